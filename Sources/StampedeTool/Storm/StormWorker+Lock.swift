import Foundation
import Stampede
import StampedeRedis

extension StormCallers {
    /// The lock scenario's loop: take the lock, check mutual exclusion and measure the
    /// hand-off with bookkeeping commands in Redis, hold the lock, release it.
    func lockLoop(until end: ContinuousClock.Instant, into report: inout WorkerReport) async {
        let clock = ContinuousClock()
        let (client, hold) = (self.client, self.hold)
        let releasedKey = RedisArgument(StormKeys.releasedAt(namespace))
        let holdersKey = RedisArgument(StormKeys.holders(namespace))
        let expiry = RedisArgument(StormKeys.expiryMilliseconds(durationMs: Int(duration.inMilliseconds), loadMs: Int(load.inMilliseconds)))
        repeat {
            let asked = clock.now
            // Counted one by one, so that a section cut short by an error is counted too: those
            // Redis answered (an error reply included). One that failed in the client (no
            // connection, a timeout) is not counted, though a timed-out one may have run.
            let bookkeeping = SharedCount()
            defer { report.bookkeepingCommands += bookkeeping.value }
            let send: @Sendable (RedisArgument...) async throws -> RedisValue = { arguments in
                do {
                    let reply = try await client.send(arguments)
                    bookkeeping.add()
                    return reply
                } catch let error as RedisError where error.code == .serverError {
                    bookkeeping.add()
                    throw error
                }
            }
            do {
                let (waited, handoff, violated) = try await withCriticalSection(until: end) {
                    let waited = clock.now - asked
                    let acquiredAt = monotonicNanoseconds()
                    let releasedAt = try await send("GET", releasedKey).int
                    let violated = try await send("INCR", holdersKey).int != 1
                    do {
                        if hold > .zero { try? await Task.sleep(for: hold) }
                        _ = try await send("DECR", holdersKey)
                    } catch {
                        // A count left raised would report every later holder as a violation.
                        _ = try? await send("DECR", holdersKey)
                        throw error
                    }
                    _ = try await send("SET", releasedKey, RedisArgument(monotonicNanoseconds()), "PX", expiry)
                    return (waited, releasedAt.map { acquiredAt - $0 }, violated)
                }
                report.requests += 1
                report.latency.record(waited)
                // Without a lock across processes (local), "the previous release" can be
                // another holder's, still inside: no hand-off to measure.
                if let handoff, handoff >= 0 { report.handoff.record(microseconds: Double(handoff) / 1000) }
                if violated { report.violations += 1 }
            } catch {
                report.requests += 1
                report.latency.record(clock.now - asked)
                report.record(error)
            }
        } while clock.now < end
    }

    /// Runs `body` holding the lock the strategy stands for.
    private func withCriticalSection<Result: Sendable>(
        until end: ContinuousClock.Instant, _ body: @Sendable () async throws -> Result
    ) async throws -> Result {
        switch strategy {
        case .stampede:
            let options = LockOptions(leaseDuration: .seconds(10), maximumWait: duration + .seconds(30))
            return try await mutex.withLock(StormKeys.lockName, options: options) { _ in try await body() }
        case .local:
            await localLock.lock()
            do {
                let result = try await body()
                await localLock.unlock()
                return result
            } catch {
                await localLock.unlock()
                throw error
            }
        case .naive:
            // The lock people write first: SET NX with an expiry, polled; released with a
            // plain DEL that does not check who holds it.
            let key = RedisArgument(StormKeys.naiveLock(namespace))
            let giveUp = end + .seconds(30)
            while try await client.send("SET", key, "1", "NX", "PX", "10000").isNull {
                guard ContinuousClock.now < giveUp else { throw StampedeError(.waitTimedOut, "naive lock stayed held") }
                try await Task.sleep(for: .milliseconds(10))
            }
            do {
                let result = try await body()
                try await client.send("DEL", key)
                return result
            } catch {
                _ = try? await client.send("DEL", key)
                throw error
            }
        }
    }
}

/// A first-come, first-served lock inside one process: what "local" stands for in the lock
/// scenario. It cannot exclude other processes; the storm counts the violations.
actor LocalLock {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        guard held else {
            held = true
            return
        }
        // Ownership passes straight to the first waiter in unlock().
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty { held = false } else { waiters.removeFirst().resume() }
    }
}
