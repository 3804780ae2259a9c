import StampedeRedis

/// One try at a lease that others may hold too: a lock, or a semaphore's permit.
enum LeaseAttempt: Sendable {
    case granted(Lease)
    /// Held; the holders' soonest lease ends in at most this long.
    case held(retryWithin: Duration)
}

/// How a ``RedisMutex`` or a ``RedisSemaphore`` waits for its lease: a free one costs one
/// round trip and no subscription; a held one is waited for, woken by the release messages on
/// `channel`, with a jittered re-check (at most `recheckInterval`, never past the soonest
/// lease's end) in case a message is lost or a holder died.
struct LeaseWait {
    let client: RedisClient
    let clock: any MonotonicClock
    let channel: String
    let recheckInterval: Duration

    /// Tries `attempt` until it grants a lease, at most until `deadline`. Returns the lease
    /// and the local time just before the winning try was sent (the lease's local start), or
    /// `nil` when the first try finds it held and there is no deadline. `contended` runs when
    /// the first try finds it held.
    ///
    /// - Throws: `timedOut()` past the deadline; ``StampedeError/Code/redisUnavailable``.
    func lease(
        until deadline: ContinuousClock.Instant?, contended: () -> Void, timedOut: @escaping @Sendable () -> StampedeError,
        _ attempt: @escaping @Sendable () async throws(StampedeError) -> LeaseAttempt
    ) async throws(StampedeError) -> (Lease, ContinuousClock.Instant)? {
        var sentAt = clock.now
        if case .granted(let lease) = try await attempt() { return (lease, sentAt) }
        contended()
        guard let deadline, clock.now < deadline else { return nil }
        let (clock, recheckInterval) = (self.clock, self.recheckInterval)
        // Subscribe, then try again before waiting, so a release between the first try and
        // the subscription is not missed.
        return try await StampedeError.fromRedis {
            try await client.subscribe(to: [channel]) { releases in
                let signal = AsyncSignal()
                return try await withThrowingTaskGroup(of: (Lease, ContinuousClock.Instant)?.self) { group in
                    group.addTask {
                        // Every release message (or a possible gap after a reconnect) wakes the waiter.
                        for try await _ in releases { signal.notify() }
                        return nil
                    }
                    defer { group.cancelAll() }
                    while true {
                        let seen = signal.generation
                        sentAt = clock.now
                        switch try await attempt() {
                        case .granted(let lease):
                            return (lease, sentAt)
                        case .held(let soonest):
                            let now = clock.now
                            guard now < deadline else { throw timedOut() }
                            try Task.checkCancellation()
                            // Jittered, so that waiters spread out.
                            let fallback = min(recheckInterval, soonest) * Double.random(in: 0.5...1)
                            await signal.wait(after: seen, until: now + min(fallback, deadline - now), clock: clock)
                        }
                    }
                }
            }
        }
    }
}
