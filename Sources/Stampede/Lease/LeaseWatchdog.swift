import Logging
import Metrics
import StampedeRedis

/// Keeps a lease alive while its holder works, and says when it is lost: shared by
/// ``RedisMutex`` (a lock's body) and ``StampedeCache`` (a loader under a key's lease).
///
/// It renews the lease every third of its duration, only while the lock still holds the
/// lease's token. The lease is lost when a renewal finds the token gone, or when Redis stays
/// unreachable until the lease would have run out by the local clock.
struct LeaseWatchdog: Sendable {
    let client: RedisClient
    let clock: any MonotonicClock
    /// Counts successful renewals: the mutex and the cache each count their own.
    let renewals: Counter
    let logger: Logger

    /// KEYS: lock. ARGV: token, lease ms. Returns 1 when renewed, 0 when the token is gone.
    static let renewScript = RedisScript("""
        if redis.pcall('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """)

    /// How holding a lease ended.
    enum End<Success: Sendable>: Sendable {
        /// The work returned or threw.
        case finished(Result<Success, any Error>)
        /// The lease was lost first: the work was cancelled.
        case lost(LeaseLoss)
        /// The timeout passed first: the work was cancelled.
        case timedOut
    }

    /// Runs `work` while renewing `lease`, the lock at `lockKey` taken at `acquiredAt` (the
    /// local time just before the winning request was sent) for `duration`. The first of
    /// these decides, and the others are cancelled and awaited: `work` ends, the lease is
    /// lost, `timeout` passes.
    ///
    /// `renewal` renews the lease at `lockKey` (KEYS: the key; ARGV: token, lease ms; 1 when
    /// renewed, 0 when the token is gone): a lock's by default, a semaphore's permit otherwise.
    func hold<Success: Sendable>(
        _ lease: Lease, lockKey: String, renewal: RedisScript = Self.renewScript, duration: Duration,
        acquiredAt: ContinuousClock.Instant, timeout: Duration? = nil, _ work: @Sendable () async throws -> Success
    ) async -> End<Success> {
        // The task group waits for every child before it returns, so `work` does not outlive
        // this call even though a child task needs an escaping closure.
        await withoutActuallyEscaping(work) { work in
            await withTaskGroup(of: End<Success>?.self) { group in
                group.addTask { .finished(await Result { try await work() }) }
                group.addTask {
                    await self.watch(lease, lockKey: lockKey, renewal: renewal, duration: duration, acquiredAt: acquiredAt).map { .lost($0) }
                }
                if let timeout {
                    let deadline = clock.now + timeout
                    group.addTask {
                        do { try await clock.sleep(until: deadline) } catch { return nil }
                        return .timedOut
                    }
                }
                var decided: End<Success>?
                while let next = await group.next() {
                    guard let next, decided == nil else { continue }
                    decided = next
                    group.cancelAll()
                }
                // The work's child always returns an end, so one was decided.
                return decided ?? .timedOut
            }
        }
    }

    /// Runs `body` under the watchdog, then gives the lease back with `release` (which answers
    /// whether the lease was still held): a lock's body, or a semaphore permit's. A lease lost
    /// while the body ran, or found gone at the release, goes to `lost` and throws
    /// ``StampedeError/Code/leaseLost``; a release that fails leaves the lease to expire.
    func holdThenRelease<Result: Sendable>(
        _ lease: Lease, lockKey: String, renewal: RedisScript = Self.renewScript, duration: Duration,
        acquiredAt: ContinuousClock.Instant, release: () async throws -> Bool, lost: (LeaseLoss) async -> Void,
        _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result {
        let end = await hold(lease, lockKey: lockKey, renewal: renewal, duration: duration, acquiredAt: acquiredAt) {
            try await body(lease)
        }
        let outcome: Swift.Result<Result, any Error>
        switch end {
        case .lost(let loss):
            await lost(loss)
            throw StampedeError(.leaseLost, loss.description)
        case .timedOut:
            throw StampedeError(.leaseLost, "the lease on '\(lease.name)' ended without a timeout set")
        case .finished(let finished):
            outcome = finished
        }
        let released: Bool
        do {
            released = try await release()
        } catch {
            // It expires on its own; the body held it for as long as renewals showed.
            logger.debug("could not release the lease; it will expire", metadata: [
                "stampede.lease": "\(lease.name)", "stampede.error": "\(error)",
            ])
            released = true
        }
        if !released {
            // The token was gone by the end: the body ran at least partly without the lease.
            let loss = LeaseLoss(lease: lease, reason: .tokenGone)
            await lost(loss)
            throw StampedeError(.leaseLost, loss.description)
        }
        return try outcome.get()
    }

    /// Renews the lease every third of its duration until cancelled. Returns the loss if a
    /// renewal finds the token gone, or if Redis stays unreachable until the lease would have
    /// run out by the local clock; `nil` when cancelled (the work ended).
    func watch(
        _ lease: Lease, lockKey: String, renewal: RedisScript = Self.renewScript, duration: Duration, acquiredAt: ContinuousClock.Instant
    ) async -> LeaseLoss? {
        let interval = duration / 3
        var validUntil = acquiredAt + duration
        var nextRenewal = acquiredAt + interval
        let arguments: [RedisArgument] = [RedisArgument(lease.token), RedisArgument(duration.milliseconds)]
        while true {
            do { try await clock.sleep(until: nextRenewal) } catch { return nil }
            let sentAt = clock.now
            do {
                let reply = try await client.run(renewal, keys: [RedisArgument(lockKey)], arguments: arguments)
                if Task.isCancelled { return nil }
                guard reply.int == 1 else { return LeaseLoss(lease: lease, reason: .tokenGone) }
                renewals.increment()
                validUntil = sentAt + duration
                nextRenewal = sentAt + interval
            } catch {
                if Task.isCancelled { return nil }
                let now = clock.now
                if now >= validUntil { return LeaseLoss(lease: lease, reason: .redisUnreachable) }
                logger.debug("lease renewal failed; retrying", metadata: [
                    "stampede.lease": "\(lease.name)", "stampede.error": "\(error)",
                ])
                // Try again soon, and once more at the last moment the lease is still valid.
                nextRenewal = min(now + interval / 4, validUntil)
            }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
