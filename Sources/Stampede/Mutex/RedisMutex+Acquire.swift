import Logging
import StampedeRedis

extension RedisMutex {
    /// Takes the lock, waiting for it until `deadline` if one is given. Returns the lease and
    /// the local time just before the winning attempt was sent (the lease's local start), or
    /// `nil` when the lock is held and there is no deadline.
    func acquire(
        _ name: String, keys: Keys, options: LockOptions, deadline: ContinuousClock.Instant?
    ) async throws(StampedeError) -> (Lease, ContinuousClock.Instant)? {
        let wait = LeaseWait(client: client, clock: clock, channel: keys.channel, recheckInterval: options.recheckInterval)
        return try await wait.lease(
            until: deadline, contended: { metrics.contended.increment() },
            timedOut: { StampedeError(.waitTimedOut, "lock '\(name)' stayed held for \(options.maximumWait)") }
        ) { () throws(StampedeError) in try await self.attempt(name, keys: keys, options: options) }
    }

    /// One acquisition attempt. A reply lost to a timeout or a dropped connection is
    /// resolved by reading the lock back: if it holds our token, it is ours.
    func attempt(_ name: String, keys: Keys, options: LockOptions) async throws(StampedeError) -> LeaseAttempt {
        let token = Lease.randomToken()
        let arguments: [RedisArgument] = [RedisArgument(token), RedisArgument(options.leaseDuration.milliseconds)]
        let lockKeys: [RedisArgument] = [RedisArgument(keys.lock), RedisArgument(keys.fence)]
        let reply: RedisValue
        var acknowledged: Int?
        do {
            if let wanted = options.replicaAcknowledgement {
                (reply, acknowledged) = try await client.run(
                    LockScripts.acquire, keys: lockKeys, arguments: arguments, waitingForReplicas: wanted.replicas, timeout: wanted.timeout)
            } else {
                reply = try await client.run(LockScripts.acquire, keys: lockKeys, arguments: arguments)
            }
        } catch let error as RedisError where error.code == .invalidArgument {
            throw StampedeError(.invalidArgument, "could not acquire lock '\(name)': \(error.message)")
        } catch let error as RedisError where error.code == .timeout || error.code == .connectionLost {
            return try await resolveAmbiguous(name, keys: keys, token: token, options: options, cause: error)
        } catch let error as RedisError {
            throw StampedeError(.redisUnavailable, "could not acquire lock '\(name)'", underlying: error)
        } catch {
            throw StampedeError(.redisUnavailable, "could not acquire lock '\(name)': \(error)")
        }
        guard case .array(let parts) = reply, parts.count == 2, let flag = parts[0].int, let number = parts[1].int else {
            throw StampedeError(.redisUnavailable, "unexpected reply to the acquire script: \(reply)")
        }
        if flag == 1 {
            if let wanted = options.replicaAcknowledgement, let acknowledged, acknowledged < wanted.replicas {
                releaseOrphan(keys: keys, token: token, leaseDuration: options.leaseDuration)
                throw StampedeError(.noQuorum, "lock '\(name)' was granted, but \(acknowledged) of the \(wanted.replicas) replicas asked for acknowledged it within \(wanted.timeout); it was released")
            }
            return .granted(Lease(name: name, token: token, fence: FencingToken(number)))
        }
        // The script takes over a lock without expiry; 0 is a lock about to expire.
        return .held(retryWithin: .milliseconds(max(number, 1)))
    }

    private func resolveAmbiguous(
        _ name: String, keys: Keys, token: String, options: LockOptions, cause: RedisError
    ) async throws(StampedeError) -> LeaseAttempt {
        do {
            let reply = try await client.run(
                LockScripts.confirm, keys: [RedisArgument(keys.lock), RedisArgument(keys.fence)], arguments: [RedisArgument(token)])
            if let fence = reply.int {
                logger.debug("acquire reply was lost, but the lock holds our token", metadata: ["stampede.lock": "\(name)"])
                return .granted(Lease(name: name, token: token, fence: FencingToken(fence)))
            }
            return .held(retryWithin: options.recheckInterval)
        } catch {
            // We cannot tell whether the lock is ours. Do not leave it held for nothing:
            // keep trying to release this token until the lease would have run out anyway.
            releaseOrphan(keys: keys, token: token, leaseDuration: options.leaseDuration)
            throw StampedeError(.redisUnavailable, "could not acquire lock '\(name)'", underlying: cause)
        }
    }

    /// Best effort, in the background: deletes a lock that may hold `token` (an acquisition
    /// whose reply was lost, or that its replicas did not acknowledge).
    private func releaseOrphan(keys: Keys, token: String, leaseDuration: Duration) {
        let client = self.client
        let logger = self.logger
        let clock = self.clock
        background.start {
            let giveUp = clock.now + leaseDuration
            while clock.now < giveUp {
                do {
                    try await client.run(
                        LockScripts.release, keys: [RedisArgument(keys.lock)],
                        arguments: [RedisArgument(token), RedisArgument(keys.channel)])
                    logger.debug("released a lock whose acquisition reply was lost", metadata: ["stampede.lock": "\(keys.lock)"])
                    return
                } catch {
                    try? await clock.sleep(for: min(leaseDuration / 8, .milliseconds(250)))
                }
            }
        }
    }
}
