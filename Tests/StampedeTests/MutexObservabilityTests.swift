import MetricsTestKit
@testable import Stampede
import StampedeTestSupport
import Testing

@Suite("RedisMutex metrics and ambiguous replies", .serialized, .timeLimit(.minutes(2)))
struct MutexObservabilityTests {
    @Test func countsAcquisitionsContentionRenewalsAndLosses() async throws {
        try await withSharedClient { client, _ in
            let metrics = TestMetrics()
            // The mutex's time moves when the test says; Redis's is moved along with it.
            let clock = ManualClock()
            let mutex = RedisMutex.onClock(clock, client: client, keyPrefix: uniquePrefix(), metricsFactory: metrics)
            // Long enough that the real time a loaded machine takes between steps does not
            // expire the lock in Redis on its own.
            try await mutex.withLock("a", options: .init(leaseDuration: .seconds(30))) { lease in
                // 33 s under a 30 s lease, renewed every 10 s.
                for step in [Duration.seconds(10), .seconds(10), .seconds(10), .seconds(3)] {
                    await clock.waitForSleepers(1)  // the watchdog waits for its next renewal
                    try Task.checkCancellation()
                    try await age(client, mutex.keyPrefix + "{a}", by: step)
                    clock.advance(by: step)
                }
                #expect(try await client.send("GET", RedisArgument(mutex.keyPrefix + "{a}")).string == lease.token)
                // Held: a try from another task tree is contended.
                _ = try await Task.detached { try await mutex.tryLock("a") { _ in } }.value
            }
            let losing = Task {
                await stampedeError {
                    try await mutex.withLock("b", options: .init(leaseDuration: .milliseconds(300))) { _ in
                        try await client.send("DEL", RedisArgument(mutex.keyPrefix + "{b}"))
                        try await clock.sleepUntilCancelled()
                    }
                }
            }
            await clock.waitForSleepers(2)  // the body, and the watchdog until its first renewal
            clock.advance(by: .milliseconds(100))
            _ = await losing.value
            #expect(try metrics.expectCounter("stampede.lock.acquired").totalValue == 2)
            #expect(try metrics.expectCounter("stampede.lock.contended").totalValue == 1)
            #expect(try metrics.expectCounter("stampede.lock.renewals").totalValue == 3)
            #expect(try metrics.expectCounter("stampede.lock.lost").totalValue == 1)
            #expect(try metrics.expectTimer("stampede.lock.wait").values.count == 2)
        }
    }

    /// The acquire reply is lost to a timeout, but the acquisition did happen: reading the
    /// lock back finds our token, and the lock is ours.
    @Test func anAcquireWhoseReplyTimedOutIsConfirmedByReadingTheLockBack() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.commandTimeout = .milliseconds(300)
            try await withClient(configuration) { client in
                let control = try RedisClient(configuration: RedisConfiguration(url: server.url))
                defer { Task { await control.shutdown() } }
                let mutex = RedisMutex(client: client)
                try await client.send("PING")
                // The server holds every command for 400 ms: the acquire times out at 300 ms,
                // runs at 400 ms, and the read-back sent at 300 ms sees the lock is ours.
                try await control.send("CLIENT", "PAUSE", "400", "ALL")
                let fence = try await mutex.withLock("ambiguous", options: .init(leaseDuration: .seconds(30))) { $0.fence }
                // The fence the read-back found is the one the acquire wrote.
                #expect(try await client.send("GET", RedisArgument(RedisMutex.Keys(prefix: "stampede:lock:", name: "ambiguous").fence)).int == fence.value)
                #expect(try await client.send("EXISTS", RedisArgument(RedisMutex.Keys(prefix: "stampede:lock:", name: "ambiguous").lock)) == .integer(0), "released after use")
            }
        }
    }

    /// When even the read-back fails, the caller gets an error, and the lock that the lost
    /// acquire took is released in the background instead of staying held for its whole
    /// 30 s lease.
    @Test func anUnconfirmableAcquireLeavesNoOrphanLock() async throws {
        try await withPrivateServer { server in
            let proxy = try await TestProxy.start(to: "127.0.0.1", port: server.port!)
            var configuration = try RedisConfiguration(url: proxy.url)
            configuration.commandTimeout = .milliseconds(150)
            configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
            let control = try RedisClient(configuration: RedisConfiguration(url: server.url))
            try await withClient(configuration) { client in
                let mutex = RedisMutex(client: client)
                // Scripts cached on the server first (a NOSCRIPT reply lost on the way would
                // mean the acquire never ran).
                try await mutex.withLock("warm-up") { _ in }
                try await client.run(LockScripts.confirm, keys: ["warm-up", "warm-up:fence"], arguments: ["-"])
                // Commands reach Redis and run; their replies are lost on the way back.
                proxy.set(.dropReplies)
                let error = await stampedeError {
                    try await mutex.withLock("orphan", options: .init(leaseDuration: .seconds(30))) { _ in }
                }
                #expect(error?.code == .redisUnavailable)
                #expect(try await control.send("GET", RedisArgument(RedisMutex.Keys(prefix: "stampede:lock:", name: "orphan").fence)).int ?? 0 > 0, "the acquire did run")
                proxy.set(.forward)
                #expect(await eventually(within: .seconds(8)) {
                    (try? await control.send("EXISTS", RedisArgument(RedisMutex.Keys(prefix: "stampede:lock:", name: "orphan").lock))) == .integer(0)
                }, "the orphan lock was not released")
            }
            await control.shutdown()
            await proxy.stop()
        }
    }
}
