import Logging
import StampedeRedis

extension RedisMutex {
    /// Runs `body` under the watchdog; releases the lock afterwards.
    func hold<Result: Sendable>(
        _ lease: Lease, keys: Keys, acquiredAt: ContinuousClock.Instant, options: LockOptions,
        _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result {
        let end = await watchdog.hold(lease, lockKey: keys.lock, duration: options.leaseDuration, acquiredAt: acquiredAt) {
            try await body(lease)
        }
        let outcome: Swift.Result<Result, any Error>
        switch end {
        case .lost(let loss):
            await leaseLost(loss, options: options)
            throw StampedeError(.leaseLost, loss.description)
        case .timedOut:
            throw StampedeError(.leaseLost, "the lease on '\(lease.name)' ended without a timeout set")
        case .finished(let finished):
            outcome = finished
        }
        let released: Bool
        do {
            released = try await client.run(
                LockScripts.release, keys: [RedisArgument(keys.lock)],
                arguments: [RedisArgument(lease.token), RedisArgument(keys.channel)]).int == 1
        } catch {
            // The lock expires on its own; the body held it for as long as renewals showed.
            logger.debug("could not release lock; it will expire", metadata: [
                "stampede.lock": "\(lease.name)", "stampede.error": "\(error)",
            ])
            released = true
        }
        if !released {
            // The token was gone by the end: the body ran at least partly without the lock.
            let loss = LeaseLoss(lease: lease, reason: .tokenGone)
            await leaseLost(loss, options: options)
            throw StampedeError(.leaseLost, loss.description)
        }
        logger.debug("lock released", metadata: ["stampede.lock": "\(lease.name)"])
        return try outcome.get()
    }

    private func leaseLost(_ loss: LeaseLoss, options: LockOptions) async {
        metrics.lost.increment()
        logger.warning("lease lost", metadata: [
            "stampede.lock": "\(loss.lease.name)", "stampede.fence": "\(loss.lease.fence)",
            "stampede.reason": "\(loss.reason)",
        ])
        await options.onLeaseLost?(loss)
    }
}
