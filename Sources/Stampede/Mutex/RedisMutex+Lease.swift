import Logging
import StampedeRedis

extension RedisMutex {
    /// How holding a lease ended.
    private enum Outcome<Result: Sendable>: Sendable {
        case finished(Result)
        case failed(any Error)
        case lost(LeaseLoss)
    }

    /// Runs `body` beside the watchdog; releases the lock afterwards.
    func hold<Result: Sendable>(
        _ lease: Lease, keys: Keys, acquiredAt: ContinuousClock.Instant, options: LockOptions,
        _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result {
        // The task group waits for both children before it returns, so `body` does not
        // outlive this call even though a child task needs an escaping closure.
        let outcome: Outcome<Result> = await withoutActuallyEscaping(body) { body in
            await withTaskGroup(of: Outcome<Result>?.self) { group in
                group.addTask {
                    do { return .finished(try await body(lease)) } catch { return .failed(error) }
                }
                group.addTask {
                    await self.watch(lease, keys: keys, acquiredAt: acquiredAt, options: options).map { .lost($0) }
                }
                // The first to end decides: the body finishing stops the watchdog; a lost lease
                // cancels the body (and waits for it to end).
                var decided: Outcome<Result>?
                while let next = await group.next() {
                    guard let next, decided == nil else { continue }
                    decided = next
                    group.cancelAll()
                }
                return decided!
            }
        }

        switch outcome {
        case .lost(let loss):
            await leaseLost(loss, options: options)
            throw StampedeError(.leaseLost, loss.description)
        case .finished, .failed:
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
            switch outcome {
            case .finished(let result): return result
            case .failed(let error): throw error
            case .lost: fatalError("handled above")
            }
        }
    }

    private func leaseLost(_ loss: LeaseLoss, options: LockOptions) async {
        metrics.lost.increment()
        logger.warning("lease lost", metadata: [
            "stampede.lock": "\(loss.lease.name)", "stampede.fence": "\(loss.lease.fence)",
            "stampede.reason": "\(loss.reason)",
        ])
        await options.onLeaseLost?(loss)
    }

    /// Renews the lease every third of its duration until cancelled. Returns the loss if a
    /// renewal finds the token gone, or if Redis stays unreachable until the lease would have
    /// run out by the local clock; `nil` when cancelled (the body ended).
    func watch(
        _ lease: Lease, keys: Keys, acquiredAt: ContinuousClock.Instant, options: LockOptions
    ) async -> LeaseLoss? {
        let clock = ContinuousClock()
        let duration = options.leaseDuration
        let interval = duration / 3
        var validUntil = acquiredAt + duration
        var nextRenewal = acquiredAt + interval
        let arguments: [RedisArgument] = [RedisArgument(lease.token), RedisArgument(duration.milliseconds)]
        while true {
            do { try await Task.sleep(until: nextRenewal, clock: clock) } catch { return nil }
            let sentAt = clock.now
            do {
                let reply = try await client.run(LockScripts.renew, keys: [RedisArgument(keys.lock)], arguments: arguments)
                if Task.isCancelled { return nil }
                guard reply.int == 1 else { return LeaseLoss(lease: lease, reason: .tokenGone) }
                metrics.renewals.increment()
                validUntil = sentAt + duration
                nextRenewal = sentAt + interval
            } catch {
                if Task.isCancelled { return nil }
                let now = clock.now
                if now >= validUntil { return LeaseLoss(lease: lease, reason: .redisUnreachable) }
                logger.debug("lease renewal failed; retrying", metadata: [
                    "stampede.lock": "\(lease.name)", "stampede.error": "\(error)",
                ])
                // Try again soon, and once more at the last moment the lease is still valid.
                nextRenewal = min(now + interval / 4, validUntil)
            }
        }
    }
}
