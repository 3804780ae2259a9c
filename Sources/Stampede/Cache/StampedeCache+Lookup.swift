import Foundation
import Logging
import StampedeRedis
import Synchronization

extension StampedeCache {
    /// One lookup for this process (callers of the same key share it): read, and load, wait
    /// or serve stale as the lease-get script decides.
    ///
    /// `earlyRefreshDraw` is the draw the quick first try judged with: the script must judge
    /// with the same one, or a refresh would need two draws to agree and come half as often
    /// as the policy's beta says. A lookup that goes round again draws anew.
    func lookup(
        _ key: String, policy: CachePolicy, earlyRefreshDraw: Double, load: @escaping @Sendable () async throws -> [UInt8]?
    ) async throws -> Lookup {
        let keys = keys(for: key)
        // Watch before reading, so that a fill between the read and the wait is not missed.
        var seen = events.watch(key)
        defer { events.unwatch(key) }
        // Subscribed before the first read: any fill after that read will be heard.
        var listening = events.isListening
        let clock = ContinuousClock()
        // However many rounds it takes (a leader that died, a lock that is never released),
        // a caller waits for others at most this long in all.
        let waitDeadline = clock.now + policy.waitTimeout
        var draw: Double? = earlyRefreshDraw
        while true {
            try Task.checkCancellation()
            // XFetch: refresh early when now - delta * beta * ln(rand) >= freshUntil.
            let early = draw ?? policy.earlyRefreshDraw()
            draw = nil
            let token = RedisMutex.randomToken()
            let sentAt = clock.now
            let reply: LeaseGetReply
            do {
                reply = try LeaseGetReply(try await client.run(
                    CacheScripts.leaseGet, keys: keys.all,
                    arguments: [RedisArgument(token), RedisArgument(policy.leaseDuration.milliseconds), RedisArgument("\(early)")]))
            } catch let error as RedisError {
                return try await withoutRedis(key, policy: policy, load: load, cause: error)
            }
            outageValues.redisAnswered()
            if !reply.repairs.isEmpty {
                metrics.corruptEntries.increment()
                logger.debug("found foreign or unreadable data under the key's names and replaced it", metadata: [
                    "stampede.key": "\(key)", "stampede.repaired": "\(reply.repairs.names)",
                ])
            }
            let lease = Lease(name: key, token: token, fence: FencingToken(reply.fence))

            switch (reply.state, reply.role) {
            case (.fresh(let entry), _):
                metrics.hits.increment()
                keepNear(key, entry: entry, redisNow: reply.now, sentAt: sentAt, seen: seen)
                if reply.role == .leader {
                    // Early refresh: this caller won the try-lock; it serves the fresh value
                    // and refreshes in the background.
                    refreshInBackground(key, keys: keys, lease: lease, leasedAt: sentAt, policy: policy, load: load)
                }
                return Lookup(entry: entry)
            case (.stale(let entry), _) where policy.freshness(of: entry, now: reply.now, earlyRefreshDraw: 0) == .stale:
                metrics.staleServed.increment()
                if reply.role == .leader {
                    refreshInBackground(key, keys: keys, lease: lease, leasedAt: sentAt, policy: policy, load: load)
                }
                return Lookup(entry: entry)
            case (_, .leader):
                metrics.misses.increment()
                return try await lead(key, keys: keys, lease: lease, leasedAt: sentAt, policy: policy, load: load, reply: reply)
            case (_, .none), (_, .follower):
                metrics.leaseContended.increment()
                if !listening, waitDeadline > clock.now {
                    // Subscribed only now: read again before waiting, so no fill is missed.
                    listening = await events.ensureListening(within: waitDeadline - clock.now)
                    if listening { continue }
                }
                let remaining = waitDeadline - clock.now
                guard remaining > .zero else {
                    return try await waitTimedOut(key, policy: policy, reply: reply, load: load)
                }
                // Never longer than the leader's lease: if it died, take over when it expires.
                let timeout = min(remaining, .milliseconds(max(reply.lockTTL, 1)) + .milliseconds(2))
                guard let (kind, generation, fill) = await events.wait(for: key, after: seen, timeout: timeout) else {
                    continue
                }
                seen = generation
                if kind == .filled, let fill {
                    // The value came with the message: no need to read it back.
                    metrics.hits.increment()
                    return Lookup(entry: fill)
                }
                if kind == .failed {
                    if let stale = servableOnError(reply, policy: policy) {
                        metrics.staleServed.increment()
                        return Lookup(entry: stale)
                    }
                    throw StampedeError(.loadFailedElsewhere, "the loader for '\(key)' failed in another process")
                }
            }
        }
    }

    /// The stale entry of `reply` if stale-if-error allows serving it in place of an error.
    private func servableOnError(_ reply: LeaseGetReply, policy: CachePolicy) -> StoredEntry? {
        guard let stale = reply.entry, reply.now < stale.freshUntil + policy.staleIfError.wholeMilliseconds else { return nil }
        return stale
    }

    /// Another caller's load did not finish within the policy's wait timeout: the stale
    /// value if stale-if-error allows it, else what ``CachePolicy/whenWaitTimesOut`` says.
    private func waitTimedOut(
        _ key: String, policy: CachePolicy, reply: LeaseGetReply, load: @Sendable () async throws -> [UInt8]?
    ) async throws -> Lookup {
        metrics.waitTimeouts.increment()
        if let stale = servableOnError(reply, policy: policy) {
            metrics.staleServed.increment()
            return Lookup(entry: stale)
        }
        switch policy.whenWaitTimesOut {
        case .fail:
            throw StampedeError(.waitTimedOut, "another caller's load of '\(key)' did not finish within \(policy.waitTimeout)")
        case .loadLocally:
            logger.debug("wait timed out; loading without the lease", metadata: ["stampede.key": "\(key)"])
            metrics.loads.increment()
            return Lookup(bytes: try await load())
        }
    }

    /// The quick first try of a lookup, run in the first caller's own task: the value when
    /// it is plainly fresh, else `nil` (then ``lookup(_:policy:load:)`` decides).
    nonisolated(nonsending) func freshLookup(_ key: String, policy: CachePolicy, earlyRefreshDraw: Double) async -> Lookup? {
        // Watched only when a near cache must know that nothing changed during the read.
        let seen = near == nil ? nil : events.watch(key)
        defer { if seen != nil { events.unwatch(key) } }
        let sentAt: ContinuousClock.Instant? = seen == nil ? nil : .now
        guard let (entry, now) = await freshRead(key, policy: policy, earlyRefreshDraw: earlyRefreshDraw) else { return nil }
        metrics.hits.increment()
        if let seen, let sentAt { keepNear(key, entry: entry, redisNow: now, sentAt: sentAt, seen: seen) }
        return Lookup(entry: entry)
    }

    /// The hit path: a fresh entry costs one `HMGET` (a plain command, cheaper for Redis than
    /// a script), judged on Redis's clock as ``RedisClock`` last read it; twice a second one
    /// hit carries `TIME` as well, to read it again. `nil` when the entry is not plainly fresh
    /// (missing, stale, foreign, due for an early refresh, or too near the end of its fresh
    /// time for the clock's error) or Redis failed: the lease-get script then decides.
    private nonisolated(nonsending) func freshRead(_ key: String, policy: CachePolicy, earlyRefreshDraw: Double) async -> (StoredEntry, Int)? {
        let read = StoredEntry.Read(namespace: configuration.namespace, key: key)
        let fields: [RedisValue]
        let now: Int
        if !redisClock.shouldRead() {
            guard case .array(let values)? = try? await client.send(read), let redisNow = redisClock.now() else { return nil }
            (fields, now) = (values, redisNow)
        } else {
            let sentAt = ContinuousClock.now
            guard let replies = try? await client.pipeline([["TIME"], read.arguments]),
                  case .success(.array(let time)) = replies[0], time.count == 2,
                  let seconds = time[0].int, let microseconds = time[1].int,
                  case .success(.array(let values)) = replies[1]
            else { return nil }
            redisClock.record(redisMilliseconds: Double(seconds) * 1000 + Double(microseconds) / 1000, sentAt: sentAt, receivedAt: .now)
            (fields, now) = (values, seconds * 1000 + microseconds / 1000)
        }
        outageValues.redisAnswered()
        guard let entry = StoredEntry(hashFields: fields),
              policy.freshness(of: entry, now: now, earlyRefreshDraw: earlyRefreshDraw) == .fresh
        else { return nil }
        return (entry, now)
    }

    /// Keeps a fresh entry in the near cache, if there is one and nothing changed the key
    /// since the lookup started, for at most its fresh time measured from before the read.
    private func keepNear(_ key: String, entry: StoredEntry, redisNow: Int, sentAt: ContinuousClock.Instant, seen: Int) {
        guard let near, let options = configuration.nearCache, events.isListening, events.generation(of: key) == seen else { return }
        let freshFor = Duration.milliseconds(entry.freshUntil - redisNow)
        near.store(.init(bytes: entry.isNegative ? nil : entry.value, expires: sentAt + min(freshFor, options.timeToLive)), for: key)
        // A change heard between the check and the store dropped the near entry before this
        // stored it: it moved the generation first, so it shows now.
        if events.generation(of: key) != seen { near.remove(key) }
    }

    /// Redis could not be reached: load without it, or fail, as the policy says.
    private func withoutRedis(
        _ key: String, policy: CachePolicy, load: @Sendable () async throws -> [UInt8]?, cause: RedisError
    ) async throws -> Lookup {
        switch policy.whenRedisUnavailable {
        case .fail:
            throw StampedeError(.redisUnavailable, "cannot look up '\(key)'", underlying: cause)
        case .loadLocally:
            let exactKey = ExactKey(key)
            if let kept = outageValues.entry(for: exactKey, now: .now) {
                return Lookup(bytes: kept.bytes)
            }
            logger.debug("Redis unavailable; loading without the cache", metadata: [
                "stampede.key": "\(key)", "stampede.error": "\(cause.code): \(cause.message)",
            ])
            metrics.loads.increment()
            let started = outageValues.startLoad()
            let bytes = try await load()
            let keptFor = bytes == nil ? policy.negativeTimeToLive : policy.timeToLive
            outageValues.keep(.init(bytes: bytes, expires: .now + keptFor), for: exactKey, from: started)
            return Lookup(bytes: bytes)
        }
    }

    /// The leader's part: load under the lease and fill. With a stale value at hand, the
    /// callers get it after the soft timeout while the load goes on.
    private func lead(
        _ key: String, keys: Keys, lease: Lease, leasedAt: ContinuousClock.Instant, policy: CachePolicy,
        load: @escaping @Sendable () async throws -> [UInt8]?, reply: LeaseGetReply
    ) async throws -> Lookup {
        let outcome = LoadOutcome()
        // Apart from this lookup: a load that outlives the soft timeout still fills the cache.
        background.start {
            outcome.finish(await Result { try await self.loadAndFill(key, keys: keys, lease: lease, leasedAt: leasedAt, policy: policy, load: load) })
        }
        let stale = reply.entry.flatMap { reply.now < $0.staleUntil ? $0 : nil }
        let result: Result<[UInt8]?, any Error>
        if let soft = policy.loaderSoftTimeout, let stale {
            guard let finished = await outcome.wait(timeout: soft) else {
                metrics.staleServed.increment()
                logger.debug("soft timeout: serving the stale value while the load goes on", metadata: ["stampede.key": "\(key)"])
                return Lookup(entry: stale)
            }
            result = finished
        } else {
            result = await outcome.wait(timeout: nil)!
        }
        switch result {
        case .success(let bytes):
            return Lookup(bytes: bytes)
        case .failure(let error):
            if let stale = servableOnError(reply, policy: policy) {
                metrics.staleServed.increment()
                logger.debug("load failed; serving the stale value", metadata: ["stampede.key": "\(key)", "stampede.error": "\(error)"])
                return Lookup(entry: stale)
            }
            throw error
        }
    }

    private func refreshInBackground(
        _ key: String, keys: Keys, lease: Lease, leasedAt: ContinuousClock.Instant, policy: CachePolicy,
        load: @escaping @Sendable () async throws -> [UInt8]?
    ) {
        background.start {
            do {
                _ = try await self.loadAndFill(key, keys: keys, lease: lease, leasedAt: leasedAt, policy: policy, load: load)
            } catch {
                self.logger.debug("background refresh failed; the old value stays", metadata: [
                    "stampede.key": "\(key)", "stampede.error": "\(error)",
                ])
            }
        }
    }

    private enum LoadEnd: Sendable {
        case loaded([UInt8]?)
        case failed(any Error)
        case timedOut
        case lost(LeaseLoss)
    }

    /// Runs the loader under the lease (renewed by the watchdog, bounded by the hard
    /// timeout), then stores the value with a fenced fill, or tells the followers it failed.
    func loadAndFill(
        _ key: String, keys: Keys, lease: Lease, leasedAt: ContinuousClock.Instant, policy: CachePolicy,
        load: @escaping @Sendable () async throws -> [UInt8]?
    ) async throws -> [UInt8]? {
        metrics.loads.increment()
        let clock = ContinuousClock()
        let start = clock.now
        let lockKeys = RedisMutex.Keys(lock: keys.lock, fence: keys.fence, channel: events.channel)
        let end: LoadEnd = await withTaskGroup(of: LoadEnd?.self) { group in
            group.addTask {
                do { return .loaded(try await load()) } catch { return .failed(error) }
            }
            group.addTask {
                await self.leases.watch(lease, keys: lockKeys, acquiredAt: leasedAt, options: LockOptions(leaseDuration: policy.leaseDuration))
                    .map { .lost($0) }
            }
            if let hard = policy.loaderHardTimeout {
                group.addTask {
                    do { try await Task.sleep(for: hard) } catch { return nil }
                    return .timedOut
                }
            }
            var decided: LoadEnd?
            while let next = await group.next() {
                guard let next, decided == nil else { continue }
                decided = next
                group.cancelAll()
            }
            return decided!
        }
        let elapsed = clock.now - start
        metrics.loadTime.recordNanoseconds(Int64(elapsed / .nanoseconds(1)))

        let error: any Error
        switch end {
        case .loaded(let bytes):
            await fill(key, keys: keys, lease: lease, bytes: bytes, loadTime: elapsed, policy: policy)
            return bytes
        case .failed(let failure):
            error = failure
        case .timedOut:
            error = StampedeError(.loaderTimedOut, "the loader for '\(key)' ran past \(policy.loaderHardTimeout!)")
        case .lost(let loss):
            metrics.leaseLost.increment()
            logger.warning("lease lost while loading", metadata: ["stampede.key": "\(key)", "stampede.reason": "\(loss.reason)"])
            error = StampedeError(.leaseLost, loss.description)
        }
        metrics.loadErrors.increment()
        let retryDelay = policy.staleIfError > .zero && policy.retryAfterError > .zero ? policy.retryAfterError.milliseconds : 0
        _ = try? await client.run(
            CacheScripts.fail, keys: keys.all,
            arguments: [
                RedisArgument(lease.token), RedisArgument(events.channel), RedisArgument(CacheEvents.message(.failed, key: key)),
                RedisArgument(retryDelay), RedisArgument(policy.staleIfError.wholeMilliseconds),
            ])
        throw error
    }

    private func fill(_ key: String, keys: Keys, lease: Lease, bytes: [UInt8]?, loadTime: Duration, policy: CachePolicy) async {
        let isNegative = bytes == nil
        var fresh = isNegative ? policy.negativeTimeToLive : policy.timeToLive
        if policy.jitter > .zero { fresh += policy.jitter * Double.random(in: 0...1) }
        let stale = isNegative ? .zero : policy.staleWindow
        do {
            let stored = try await client.run(
                CacheScripts.fill, keys: keys.all,
                arguments: [
                    RedisArgument(lease.fence.value), RedisArgument(bytes: bytes ?? []),
                    RedisArgument(fresh.milliseconds), RedisArgument(stale.wholeMilliseconds),
                    RedisArgument(loadTime.milliseconds), isNegative ? "1" : "0", RedisArgument(lease.token),
                    RedisArgument(events.channel), RedisArgument(CacheEvents.message(.filled, key: key)), RedisArgument(key),
                ])
            if stored.int != 1 {
                metrics.fillsRejected.increment()
                logger.debug("fill rejected: the key was taken over or invalidated during the load", metadata: ["stampede.key": "\(key)"])
            }
        } catch {
            logger.debug("could not store the loaded value", metadata: ["stampede.key": "\(key)", "stampede.error": "\(error)"])
        }
    }
}

extension StampedeCache.Lookup {
    init(entry: StoredEntry) {
        self.init(bytes: entry.isNegative ? nil : entry.value)
    }
}

/// The result of a load that callers may stop waiting for (soft timeout) while it goes on.
final class LoadOutcome: Sendable {
    private let result = Mutex<Result<[UInt8]?, any Error>?>(nil)
    private let done = AsyncSignal()

    func finish(_ outcome: Result<[UInt8]?, any Error>) {
        result.withLock { $0 = outcome }
        done.notify()
    }

    /// The result, or `nil` if it is not there within `timeout` (`nil` waits for ever).
    func wait(timeout: Duration?) async -> Result<[UInt8]?, any Error>? {
        while true {
            let seen = done.generation
            if let ready = result.withLock({ $0 }) { return ready }
            if let timeout {
                await done.wait(after: seen, timeout: timeout)
                return result.withLock { $0 }
            }
            await done.wait(after: seen, timeout: .seconds(3600))
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
