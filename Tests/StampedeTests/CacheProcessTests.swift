import Foundation
@testable import Stampede
import StampedeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The cache across real processes: workers are the `stampede` executable in worker mode.
@Suite("StampedeCache across processes", .serialized)
struct CacheProcessTests {
    func workers(_ count: Int, _ server: RedisServer, namespace: String, counter: String, extra: [String]) throws -> [WorkerProcess] {
        try (0..<count).map { _ in
            try WorkerProcess(["cache-worker", "--redis", server.url, "--namespace", namespace, "--origin-counter", counter] + extra)
        }
    }

    @Test(arguments: [1, 8])
    func aMissStormOfFourProcessesCallsTheOriginOncePerKey(keys: Int) async throws {
        try await withSharedClient { client, server in
            let namespace = uniquePrefix()
            let counter = namespace + "origin"
            let processes = try workers(4, server, namespace: namespace, counter: counter,
                                        extra: ["--keys", "\(keys)", "--tasks", "50", "--load-ms", "100"])
            for worker in processes {
                #expect(await worker.exitStatus(within: .seconds(60)) == 0, "\(worker.output)")
                #expect(worker.output.contains("ok 50"))
            }
            #expect(try await client.send("GET", RedisArgument(counter)).int == keys)
        }
    }

    @Test func followersFinishWhenTheLeaderIsKilledMidLoad() async throws {
        try await withSharedClient { client, server in
            let namespace = uniquePrefix()
            let counter = namespace + "origin"
            // The leader's origin never returns; its lease is 1 s.
            let leader = try WorkerProcess(["cache-worker", "--redis", server.url, "--namespace", namespace,
                                            "--origin-counter", counter, "--load-ms", "600000", "--lease-ms", "1000"])
            #expect(await leader.line(startingWith: "loading") != nil)
            let followers = try workers(2, server, namespace: namespace, counter: counter,
                                        extra: ["--tasks", "20", "--load-ms", "100", "--lease-ms", "1000", "--wait-ms", "30000"])
            try await Task.sleep(for: .milliseconds(200))
            leader.signal(SIGKILL)
            for follower in followers {
                #expect(await follower.exitStatus(within: .seconds(30)) == 0, "\(follower.output)")
                #expect(follower.output.contains("ok 20"))
            }
            // The dead leader's call and exactly one more after its lease expired.
            #expect(try await client.send("GET", RedisArgument(counter)).int == 2)
        }
    }
}
