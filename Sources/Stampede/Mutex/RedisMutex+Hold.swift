import Logging
import StampedeRedis

extension RedisMutex {
    /// Runs `body` under the watchdog; releases the lock afterwards.
    func hold<Result: Sendable>(
        _ lease: Lease, keys: Keys, acquiredAt: ContinuousClock.Instant, options: LockOptions,
        _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result {
        let result = try await watchdog.holdThenRelease(
            lease, lockKey: keys.lock, duration: options.leaseDuration, acquiredAt: acquiredAt,
            release: {
                try await client.run(
                    LockScripts.release, keys: [RedisArgument(keys.lock)],
                    arguments: [RedisArgument(lease.token), RedisArgument(keys.channel)]).int == 1
            },
            lost: { await leaseLost($0, options: options) }, body)
        logger.debug("lock released", metadata: ["stampede.lock": "\(lease.name)"])
        return result
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
