import Foundation
@testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fleet-wide concurrency limit, with real processes.
@Suite("RedisSemaphore", .serialized, .timeLimit(.minutes(3)))
struct SemaphoreTests {
    @Test("N permits are never exceeded over a thousand acquisitions from four processes (counted in Redis)")
    func neverExceeded() async throws {
        try await withSharedClient { client, server in
            let prefix = uniquePrefix()
            let workers = try (0..<4).map { _ in
                try WorkerProcess([
                    "semaphore-worker", "--redis", server.url, "--name", "api", "--mode", "count", "--key-prefix", prefix,
                    "--permits", "3", "--tasks", "8", "--iterations", "40",
                ], executable: .testWorker)
            }
            for worker in workers {
                #expect(await worker.exitStatus(within: .seconds(150)) == 0, "\(worker.errorOutput)")
            }
            #expect(try await client.send("GET", RedisArgument(prefix + "total")).int == 4 * 8 * 40)
            #expect(try await client.send("GET", RedisArgument(prefix + "excess")).isNull, "never more than 3 holders at once")
            let semaphore = RedisSemaphore(client: client, keyPrefix: prefix, permits: 3)
            #expect(try await semaphore.permitsHeld("api") == 0, "every permit given back")
        }
    }

    @Test("a SIGKILLed holder's permit comes back when its lease ends, not before")
    func killedHolder() async throws {
        try await withSharedClient { client, server in
            let prefix = uniquePrefix()
            let holder = try WorkerProcess([
                "semaphore-worker", "--redis", server.url, "--name", "db", "--mode", "hold", "--key-prefix", prefix,
                "--permits", "1", "--lease-ms", "1500", "--hold-ms", "60000",
            ], executable: .testWorker)
            let held = try #require(await holder.line(startingWith: "acquired ").flatMap { Int($0.dropFirst("acquired ".count)) })
            holder.signal(SIGKILL)
            let semaphore = RedisSemaphore(client: client, keyPrefix: prefix, permits: 1)
            #expect(try await semaphore.tryPermit("db") { _ in true } == nil, "still held: its lease has not ended")
            let fence = try await semaphore.withPermit("db", options: .init(maximumWait: .seconds(30))) { $0.fence }
            #expect(fence.value > held)
        }
    }

    @Test("a SIGSTOPped holder past its lease loses the permit: its body is cancelled and its fenced write rejected")
    func pausedHolder() async throws {
        try await withSharedClient { client, server in
            let prefix = uniquePrefix()
            let store = prefix + "document"
            let holder = try WorkerProcess([
                "semaphore-worker", "--redis", server.url, "--name", "db", "--mode", "hold", "--key-prefix", prefix,
                "--permits", "1", "--lease-ms", "600", "--hold-ms", "300", "--write-key", store,
            ], executable: .testWorker)
            #expect(await holder.line(startingWith: "acquired") != nil)
            holder.signal(SIGSTOP)
            let semaphore = RedisSemaphore(client: client, keyPrefix: prefix, permits: 1)
            let mutex = RedisMutex(client: client, keyPrefix: prefix)
            try await semaphore.withPermit("db", options: .init(maximumWait: .seconds(10))) { permit async throws in
                #expect(try await mutex.setIfFenceIsNewest(Array("fresh".utf8), at: store, fence: permit.fence))
            }
            holder.signal(SIGCONT)
            #expect(await holder.exitStatus(within: .seconds(20)) == 3, "\(holder.output)")
            #expect(holder.output.contains("lost"))
            #expect(!holder.output.contains("released"))
            #expect(try await client.send("GET", RedisArgument(store)).string == "fresh", "the late write was rejected or never made")
        }
    }

    @Test("tryPermit refuses when all are held; a waiter is woken by a release, not a re-check; the count changes at run time")
    func permitsAndWakeUps() async throws {
        try await withSharedClient { client, _ in
            let semaphore = RedisSemaphore(client: client, keyPrefix: uniquePrefix(), permits: 1)
            let holding = OneShotFlag(), release = OneShotFlag()
            let holder = Task {
                try await semaphore.withPermit("x") { _ in
                    holding.set()
                    await release.wait()
                }
            }
            await holding.wait()
            #expect(try await semaphore.tryPermit("x") { _ in true } == nil)
            // The re-check would come after a minute: only the release's message can wake it.
            let waiter = Task {
                try await semaphore.withPermit("x", options: .init(maximumWait: .seconds(30), recheckInterval: .seconds(60))) { _ in true }
            }
            try await Task.sleep(for: .milliseconds(100))
            release.set()
            try await holder.value
            #expect(try await waiter.value)

            // Two permits now, for every process; back to the default afterwards.
            try await semaphore.setPermits(2, for: "x")
            let inner = try await semaphore.withPermit("x") { _ in try await semaphore.tryPermit("x") { _ in "second" } }
            #expect(inner == "second")
            try await semaphore.setPermits(nil, for: "x")
            let refused = try await semaphore.withPermit("x") { _ in try await semaphore.tryPermit("x") { _ in "second" } }
            #expect(refused == nil)
            await #expect(throws: StampedeError.self) { try await semaphore.setPermits(0, for: "x") }
        }
    }
}

/// A flag set once, that tasks can wait for.
final class OneShotFlag: Sendable {
    private let shot = OneShot<Void>()
    func set() { shot.finish(()) }
    func wait() async { _ = await shot.wait() }
}
