@testable import Stampede
import StampedeTestSupport
import Synchronization
import Testing

/// A counter that tasks can bump from anywhere.
final class Tally: Sendable {
    private let value = Mutex(0)
    func add(_ amount: Int = 1) { value.withLock { $0 += amount } }
    var count: Int { value.withLock { $0 } }
}

@Suite("RedisMutex", .timeLimit(.minutes(2)))
struct MutexTests {
    func mutex(_ client: RedisClient) -> RedisMutex {
        RedisMutex(client: client, keyPrefix: uniquePrefix())
    }

    @Test func excludesConcurrentHoldersInOneProcess() async throws {
        try await withSharedClient { client, _ in
            let mutex = mutex(client)
            let counter = uniquePrefix() + "counter"
            let inside = Tally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        for _ in 0..<10 {
                            try await mutex.withLock("counter") { _ in
                                inside.add()
                                #expect(inside.count == 1, "two holders at once")
                                let current = try await client.send("GET", RedisArgument(counter)).int ?? 0
                                try await client.send("SET", RedisArgument(counter), RedisArgument(current + 1))
                                inside.add(-1)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await client.send("GET", RedisArgument(counter)).int == 200)
        }
    }

    @Test func fencingTokensGrowWithEveryAcquisition() async throws {
        try await withSharedClient { client, _ in
            let mutex = mutex(client)
            var fences: [FencingToken] = []
            for _ in 0..<5 {
                let fence = try await mutex.withLock("fenced") { lease in lease.fence }
                fences.append(fence)
            }
            #expect(fences == fences.sorted())
            #expect(Set(fences).count == 5)
            #expect(try await mutex.isCurrent(fences.last!, for: "fenced"))
            #expect(try await !mutex.isCurrent(fences.first!, for: "fenced"))
        }
    }

    @Test("the fence keeps growing when its key is lost, as a failover that lost the last acquisitions would lose it")
    func fencesNeverGoBackwards() async throws {
        try await withSharedClient { client, _ in
            let mutex = mutex(client)
            let first = try await mutex.withLock("failover") { $0.fence }
            let second = try await mutex.withLock("failover") { $0.fence }
            #expect(second > first)
            try await client.send("DEL", RedisArgument(mutex.keys(for: "failover").fence))
            let afterLoss = try await mutex.withLock("failover") { $0.fence }
            #expect(afterLoss > second, "\(afterLoss) after \(second)")
            // Even set back by hand, the next fence is above the clock's microseconds.
            try await client.send("SET", RedisArgument(mutex.keys(for: "failover").fence), "5")
            #expect(try await mutex.withLock("failover") { $0.fence } > afterLoss)
        }
    }

    @Test func aHolderThatRunsThreeLeasesKeepsTheLock() async throws {
        try await withSharedClient { client, _ in
            // The mutex's time moves when the test says; Redis's is moved along with it.
            let clock = ManualClock()
            let mutex = RedisMutex.onClock(clock, client: client, keyPrefix: uniquePrefix())
            // Long enough that the real time a loaded machine takes between steps does not
            // expire the lock in Redis on its own.
            let options = LockOptions(leaseDuration: .seconds(30))
            let others = Tally()
            let renewedPastItsTTL = Tally()
            try await mutex.withLock("slow", options: options) { lease in
                let start = clock.now
                // 90 s of work under a 30 s lease: the lock stays ours and nobody else gets in.
                for _ in 0..<9 {
                    await clock.waitForSleepers(1)  // the watchdog waits for its next renewal
                    try Task.checkCancellation()
                    try await age(client, mutex.keyPrefix + "{slow}", by: .seconds(10))
                    clock.advance(by: .seconds(10))
                    await clock.waitForSleepers(1)  // renewed, and waiting for the next one
                    try Task.checkCancellation()
                    // From outside this task tree (a detached task inherits no held locks).
                    let other = try await Task.detached { try await mutex.tryLock("slow", options: options) { _ in true } }.value
                    if other != nil { others.add() }
                    let holder = try await client.send("GET", RedisArgument(mutex.keyPrefix + "{slow}")).string
                    if holder == lease.token && clock.now - start > .seconds(32) { renewedPastItsTTL.add() }
                }
            }
            #expect(others.count == 0)
            #expect(renewedPastItsTTL.count > 0, "the lock never outlived its TTL")
            // Released at the end: free again.
            #expect(try await mutex.tryLock("slow", options: options) { _ in true } == true)
        }
    }

    /// Runs `body` while another task holds lock `name`, and releases it afterwards.
    func whileHeld(_ mutex: RedisMutex, _ name: String, _ body: () async throws -> Void) async throws {
        let holderIn = AsyncSignal()
        let release = AsyncSignal()
        async let holder: Void = mutex.withLock(name) { _ in
            holderIn.notify()
            await release.wait(after: 0, until: .now + .seconds(10), clock: SystemClock())
        }
        await holderIn.wait(after: 0, until: .now + .seconds(10), clock: SystemClock())
        do {
            try await body()
        } catch {
            release.notify()
            try await holder
            throw error
        }
        release.notify()
        try await holder
    }

    @Test func tryLockReturnsNilWithoutWaitingWhenHeld() async throws {
        try await withSharedClient { client, _ in
            // On a clock that never moves, a tryLock that waited would never return.
            let mutex = RedisMutex.onClock(ManualClock(), client: client, keyPrefix: uniquePrefix())
            try await whileHeld(mutex, "busy") {
                let result = try await mutex.tryLock("busy") { _ in "got it" }
                #expect(result == nil)
            }
        }
    }

    @Test func aWaiterIsWokenByTheReleaseNotByPolling() async throws {
        try await withSharedClient { client, _ in
            // Fallback re-checks 30 s apart: only the release message can wake the waiter in time.
            let options = LockOptions(leaseDuration: .seconds(30), maximumWait: .seconds(20), recheckInterval: .seconds(30))
            // On a clock that moves only when the test says, and it never does: no re-check
            // and no deadline can wake the waiter, only the release.
            let clock = ManualClock()
            let start = clock.now
            let mutex = RedisMutex.onClock(clock, client: client, keyPrefix: uniquePrefix())
            let holderIn = AsyncSignal()
            let release = OneShot<Void>()
            async let holder: Void = mutex.withLock("wake", options: options) { _ in
                holderIn.notify()
                _ = await release.wait()
            }
            await holderIn.wait(after: 0)
            let waiter = Task { try await mutex.withLock("wake", options: options) { _ in clock.now } }
            await clock.waitForSleepers(2)  // the holder's watchdog, and the waiter in line until its deadline
            release.finish(())
            try await holder
            #expect(try await waiter.value == start, "woken by the release, with the clock not moved")
        }
    }

    @Test func waitingGivesUpAfterTheMaximumWait() async throws {
        try await withSharedClient { client, _ in
            let mutex = mutex(client)
            try await whileHeld(mutex, "held") {
                let error = await stampedeError {
                    try await mutex.withLock("held", options: .init(maximumWait: .milliseconds(300))) { _ in }
                }
                #expect(error?.code == .waitTimedOut)
            }
        }
    }

    @Test func locksAreNotReentrant() async throws {
        try await withSharedClient { client, _ in
            let mutex = mutex(client)
            let error = await stampedeError {
                try await mutex.withLock("outer") { _ in
                    try await mutex.withLock("outer") { _ in }
                }
            }
            #expect(error?.code == .reentrantLock)
            // Other names nest fine.
            let nested = try await mutex.withLock("a") { _ in try await mutex.withLock("b") { _ in 1 } }
            #expect(nested == 1)
        }
    }

    @Test func rejectsBadInput() async throws {
        try await withSharedClient { client, _ in
            let mutex = mutex(client)
            let cases: [(String, LockOptions)] = [
                ("", LockOptions()),
                (String(repeating: "x", count: RedisMutex.maximumNameLength + 1), LockOptions()),
                ("ok", LockOptions(leaseDuration: .zero)),
                ("ok", LockOptions(leaseDuration: .seconds(-1))),
                ("ok", LockOptions(maximumWait: .milliseconds(-1))),
                ("ok", LockOptions(recheckInterval: .zero)),
            ]
            for (name, options) in cases {
                let error = await stampedeError { try await mutex.withLock(name, options: options) { _ in } }
                #expect(error?.code == .invalidArgument, "\(name.prefix(10)) \(options.leaseDuration)")
            }
        }
    }

    @Test func theBodysErrorReachesTheCallerAndTheLockIsReleased() async throws {
        struct Oops: Error {}
        try await withSharedClient { client, _ async throws in
            let mutex = mutex(client)
            await #expect(throws: Oops.self) { try await mutex.withLock("err") { _ in throw Oops() } }
            #expect(try await mutex.tryLock("err") { _ in true } == true)
        }
    }

    @Test func aLockDeletedUnderTheHolderIsLostTheBodyCancelledAndTheHandlerRun() async throws {
        try await withSharedClient { client, _ in
            let clock = ManualClock()
            let mutex = RedisMutex.onClock(clock, client: client, keyPrefix: uniquePrefix())
            let handled = Tally()
            let cancelled = Tally()
            let options = LockOptions(leaseDuration: .milliseconds(300), onLeaseLost: { loss in
                #expect(loss.reason == .tokenGone)
                handled.add()
            })
            let holding = Task {
                await stampedeError {
                    try await mutex.withLock("stolen", options: options) { _ in
                        // Someone deletes the lock (a failover would do the same).
                        try await client.send("DEL", RedisArgument(mutex.keyPrefix + "{stolen}"))
                        // Work that goes on until cancelled.
                        do { try await clock.sleepUntilCancelled() } catch { cancelled.add() }
                    }
                }
            }
            await clock.waitForSleepers(2)  // the body, and the watchdog until its first renewal
            clock.advance(by: .milliseconds(100))
            let error = await holding.value
            #expect(error?.code == .leaseLost)
            #expect(handled.count == 1)
            #expect(cancelled.count == 1, "the body was not cancelled")
        }
    }
}

/// The error `body` throws as a ``StampedeError``, or `nil`.
func stampedeError(_ body: () async throws -> Void) async -> StampedeError? {
    do {
        try await body()
        return nil
    } catch let error as StampedeError {
        return error
    } catch {
        return nil
    }
}

extension MutexTests {
    @Test("with replica acknowledgement on one server: granted once the replica holds the lock, on any of the client's connections; refused while the replica is paused")
    func replicaAcknowledgementOnOneServer() async throws {
        try await withPrivateServer { master in
            let port = try #require(master.port)
            try await withClient(RedisConfiguration(url: master.url)) { client in
                try await client.send("CONFIG", "SET", "repl-diskless-sync-delay", "0")
            }
            let replica = try await RedisServer.start(.init(extraArguments: ["--replicaof", "127.0.0.1", "\(port)"]))
            defer { replica.stop() }
            var configuration = try RedisConfiguration(url: master.url)
            configuration.connectionCount = 4
            configuration.commandTimeout = .seconds(3)
            try await withClient(configuration) { client in
                // After a full sync, a master streams writes to its replica only once the
                // replica's first acknowledgement came (within a second).
                let write = RedisScript("return redis.call('SET', KEYS[1], '1')")
                #expect(await eventually(within: .seconds(10)) {
                    (try? await client.run(write, keys: [RedisArgument(uniquePrefix())], waitingForReplicas: 1, timeout: .milliseconds(100)))?.acknowledged == 1
                })
                let mutex = mutex(client)
                let options = LockOptions(replicaAcknowledgement: .init(replicas: 1, timeout: .seconds(1)))
                // Several at once, so that acquisitions go out on every connection.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<8 {
                        group.addTask { _ = try await mutex.withLock("report-\(index)", options: options) { $0.fence } }
                    }
                    try await group.waitForAll()
                }
                replica.pause()
                defer { replica.resume() }
                let refused = await #expect(throws: StampedeError.self) {
                    try await mutex.withLock("report-0", options: options) { _ in }
                }
                #expect(refused?.code == .noQuorum)
                #expect(await eventually(within: .seconds(5)) { (try? await mutex.tryLock("report-0") { _ in true }) == true })
            }
        }
    }
}
