/// The time the cache, the mutex, their lease watchdog and the near cache run on: deadlines,
/// timeouts, renewals and expiries. The system's monotonic clock in use; in tests, a clock
/// that moves only when told, so that time-dependent logic is tested without sleeping.
///
/// (Redis's own clock decides freshness; ``RedisClock`` measures it against the system's.)
@usableFromInline
protocol MonotonicClock: Sendable {
    var now: ContinuousClock.Instant { get }
    /// Returns at `deadline`, or throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: ContinuousClock.Instant) async throws
}

extension MonotonicClock {
    func sleep(for duration: Duration) async throws {
        try await sleep(until: now + duration)
    }
}

/// The system's monotonic clock.
struct SystemClock: MonotonicClock {
    var now: ContinuousClock.Instant { .now }

    func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await Task.sleep(until: deadline, clock: .continuous)
    }
}

extension MonotonicClock {
    /// Runs `operation` until it returns, or until `deadline` passes on this clock: then it
    /// is cancelled, and what it returns on cancellation (a waiter's "gave up", or what
    /// came just in time) is the result.
    func cancelling<Result: Sendable>(
        _ operation: @escaping @Sendable () async -> Result, at deadline: ContinuousClock.Instant
    ) async -> Result {
        await withTaskGroup(of: Result?.self) { group in
            group.addTask { await operation() }
            group.addTask {
                try? await self.sleep(until: deadline)
                return nil
            }
            while let next = await group.next() {
                group.cancelAll()
                if let result = next { return result }
            }
            preconditionFailure("the operation's child always returns")
        }
    }
}
