import Logging
import Metrics
import MetricsTestKit
@testable import Stampede
import StampedeTestSupport
import Synchronization
import Testing

/// The lease watchdog on a test clock against a real server: renewals, a lost token, an
/// unreachable Redis and a timeout, each decided without waiting for real time.
@Suite("LeaseWatchdog", .timeLimit(.minutes(2)))
struct LeaseWatchdogTests {
    let lease = Lease(name: "job", token: "token-1", fence: FencingToken(1))

    func watchdog(_ client: RedisClient, clock: ManualClock, metrics: TestMetrics) -> LeaseWatchdog {
        LeaseWatchdog(client: client, clock: clock, renewals: Counter(label: "renewals", factory: metrics), logger: Logger(label: "test"))
    }

    /// Work that runs until cancelled (it sleeps on the test clock), saying when it ends.
    final class Work: Sendable {
        private let wasCancelled = Atomic(false)
        var cancelled: Bool { wasCancelled.load(ordering: .relaxed) }
        func run(on clock: ManualClock) async throws {
            do {
                try await clock.sleepUntilCancelled()
            } catch {
                wasCancelled.store(true, ordering: .relaxed)
                throw error
            }
        }
    }

    @Test("renews every third of the lease while the work runs, and stops when it ends")
    func renews() async throws {
        try await withSharedClient { client, _ in
            let clock = ManualClock()
            let metrics = TestMetrics()
            let lock = uniquePrefix() + "lock"
            // A lease long enough that the real time a loaded machine takes between steps
            // does not expire the lock in Redis on its own.
            try await client.send("SET", RedisArgument(lock), RedisArgument(lease.token), "PX", "60000")
            let done = OneShot<Void>()
            let holding = Task {
                await watchdog(client, clock: clock, metrics: metrics).hold(lease, lockKey: lock, duration: .seconds(60), acquiredAt: clock.now) {
                    _ = await done.wait()
                    return "finished"
                }
            }
            for renewal in 1...3 {
                await clock.waitForSleepers(1)
                clock.advance(by: .seconds(20))
                await clock.waitForSleepers(1)  // asleep again: the renewal is done
                #expect(try metrics.expectCounter("renewals").totalValue == renewal)
            }
            done.finish(())
            guard case .finished(.success("finished")) = await holding.value else {
                Issue.record("the work's result decides")
                return
            }
            #expect(clock.sleeping == 0, "the watchdog stopped")
        }
    }

    @Test("a renewal that finds the token gone loses the lease and cancels the work")
    func tokenGone() async throws {
        try await withSharedClient { client, _ in
            let clock = ManualClock()
            let lock = uniquePrefix() + "lock"
            try await client.send("SET", RedisArgument(lock), "someone-else", "PX", "3000")
            let work = Work()
            let holding = Task {
                await watchdog(client, clock: clock, metrics: TestMetrics()).hold(lease, lockKey: lock, duration: .seconds(3), acquiredAt: clock.now) {
                    try await work.run(on: clock)
                }
            }
            await clock.waitForSleepers(2)
            clock.advance(by: .seconds(1))
            guard case .lost(let loss) = await holding.value else {
                Issue.record("the lease is lost")
                return
            }
            #expect(loss.reason == .tokenGone)
            #expect(work.cancelled)
        }
    }

    @Test("with Redis unreachable, the lease is lost once it would have run out by the local clock, not before")
    func redisUnreachable() async throws {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:1")
        configuration.connectTimeout = .milliseconds(200)
        try await withClient(configuration) { client in
            let clock = ManualClock()
            let work = Work()
            let start = clock.now
            let holding = Task {
                await watchdog(client, clock: clock, metrics: TestMetrics()).hold(lease, lockKey: "lock", duration: .seconds(3), acquiredAt: start) {
                    try await work.run(on: clock)
                }
            }
            // Renewals fail; the first is due after a third of the lease, each retry a quarter
            // of that later, the last at the lease's end: still held until then.
            for _ in 0..<12 {
                await clock.waitForSleepers(2)  // the work, and the watchdog between attempts
                #expect(!work.cancelled, "still valid at \(clock.now - start): not lost yet")
                clock.advance(by: .milliseconds(250))
            }
            guard case .lost(let loss) = await holding.value else {
                Issue.record("the lease is lost")
                return
            }
            #expect(loss.reason == .redisUnreachable)
            #expect(clock.now >= start + .seconds(3))
        }
    }

    @Test("the timeout, when it passes first, cancels the work")
    func timeout() async throws {
        try await withSharedClient { client, _ in
            let clock = ManualClock()
            let lock = uniquePrefix() + "lock"
            try await client.send("SET", RedisArgument(lock), RedisArgument(lease.token), "PX", "30000")
            let work = Work()
            let holding = Task {
                await watchdog(client, clock: clock, metrics: TestMetrics()).hold(
                    lease, lockKey: lock, duration: .seconds(30), acquiredAt: clock.now, timeout: .seconds(2)
                ) { try await work.run(on: clock) }
            }
            await clock.waitForSleepers(3)  // the work, the watchdog, the timeout
            clock.advance(by: .seconds(2))
            guard case .timedOut = await holding.value else {
                Issue.record("the timeout decides")
                return
            }
            #expect(work.cancelled)
        }
    }
}
