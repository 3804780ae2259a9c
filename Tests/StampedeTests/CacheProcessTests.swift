import Foundation
@_spi(Benchmarks) @testable import Stampede
import StampedeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The cache across real processes: workers are the `stampede` executable in worker mode.
@Suite("StampedeCache across processes", .serialized)
struct CacheProcessTests {
    func workers(_ count: Int, _ server: RedisServer, namespace: String, counter: String, extra: [String]) throws -> [WorkerProcess] {
        try (0..<count).map { _ in
            try WorkerProcess(["cache-worker", "--redis", server.url, "--namespace", namespace, "--origin-counter", counter] + extra, executable: .testWorker)
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
                                            "--origin-counter", counter, "--load-ms", "600000", "--lease-ms", "1000"], executable: .testWorker)
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

    @Test func aStaleStormServesTheOldValueAtOnceAndRefreshesOnce() async throws {
        try await withSharedClient { client, server in
            let namespace = uniquePrefix()
            let counter = namespace + "origin"
            let swr = ["--ttl-ms", "300", "--stale-ms", "60000"]
            let seed = try workers(1, server, namespace: namespace, counter: counter, extra: swr + ["--value", "old", "--load-ms", "0"])
            #expect(await seed[0].exitStatus() == 0)
            try await Task.sleep(for: .milliseconds(400))  // soft-stale now
            let storm = try workers(4, server, namespace: namespace, counter: counter,
                                    extra: swr + ["--tasks", "50", "--load-ms", "3000", "--value", "new", "--expect", "old"])
            for worker in storm {
                #expect(await worker.exitStatus(within: .seconds(60)) == 0, "\(worker.output)")
                #expect(worker.output.contains("ok 50"))
                // Nobody waited for the 3 s loader.
                let maxMs = worker.output.first { $0.hasPrefix("max-ms ") }.flatMap { Int($0.dropFirst(7)) }
                #expect(maxMs.map { $0 < 2_000 } == true, "\(worker.output)")
            }
            // The seed's call and one refresh fleet-wide, whose value is in Redis afterwards.
            #expect(await eventually {
                (try? await client.send("HGET", RedisArgument(CacheFormat.Keys(namespace: namespace, key: "k0").entry), RedisArgument(CacheFormat.valueField)))?.string == "\"new-k0\""
            })
            #expect(try await client.send("GET", RedisArgument(counter)).int == 2)
        }
    }

    @Test func aPausedLeadersLateFillIsRejected() async throws {
        try await withSharedClient { client, server in
            let namespace = uniquePrefix()
            let counter = namespace + "origin"
            let leader = try WorkerProcess(["cache-worker", "--redis", server.url, "--namespace", namespace,
                                            "--origin-counter", counter, "--load-ms", "800", "--lease-ms", "600", "--value", "stale"], executable: .testWorker)
            #expect(await leader.line(startingWith: "loading") != nil)
            leader.signal(SIGSTOP)
            // Its lease runs out while it is paused; another process loads and fills.
            let other = try workers(1, server, namespace: namespace, counter: counter,
                                    extra: ["--load-ms", "50", "--lease-ms", "600", "--wait-ms", "30000", "--value", "fresh"])
            #expect(await other[0].exitStatus(within: .seconds(30)) == 0, "\(other[0].output)")
            leader.signal(SIGCONT)
            _ = await leader.exitStatus(within: .seconds(30))
            // Whether the resumed leader's load was cancelled (lease lost) or finished (fill
            // rejected by the fence), the cache keeps the newer value.
            #expect(try await client.send("HGET", RedisArgument(CacheFormat.Keys(namespace: namespace, key: "k0").entry), RedisArgument(CacheFormat.valueField)).string == "\"fresh-k0\"")
            #expect(try await client.send("GET", RedisArgument(counter)).int == 2)
        }
    }
}
