import Tracing
import Logging
import StampedeRedis

/// The I/O shell around ``LookupMachine`` and ``LeaderMachine``: it reads Redis, waits for
/// events, runs the loader and writes, as the machines decide.
extension StampedeCache {
    typealias Loader = @Sendable () async throws -> [UInt8]?

    /// One lookup for this process (callers of the same key share it): the lease-get script,
    /// then serve, load, wait or serve stale as ``LookupMachine`` decides.
    ///
    /// `earlyRefreshDraw` is the draw the hit read judged with: the script must judge with
    /// the same one, or a refresh would need two draws to agree and come half as often as
    /// the policy's beta says. A lookup that goes round again draws anew.
    func lookup(_ key: String, policy: CachePolicy, earlyRefreshDraw: Double, logger: Logger, load: @escaping Loader) async throws -> Found {
        let keys = CacheFormat.Keys(namespace: configuration.namespace, key: key)
        // Watched before the first read, so that a fill between a read and the wait is not missed.
        var seen = events.watch(key)
        defer { events.unwatch(key) }
        var machine = LookupMachine(key: key, policy: policy, startedAt: clock.now, isListening: events.isListening)
        var draw: Double? = earlyRefreshDraw
        var action = LookupMachine.Action.readAgain
        // The last read: the lease it asked for and when it was sent.
        var read: (lease: Lease, sentAt: ContinuousClock.Instant, redisNow: Int)?
        var redisError: RedisError?
        while true {
            switch action {
            case .readAgain:
                try Task.checkCancellation()
                // XFetch: refresh early when now - delta * beta * ln(rand) >= freshUntil.
                let early = draw ?? policy.earlyRefreshDraw()
                draw = nil
                let token = Lease.randomToken()
                let sentAt = clock.now
                let reply: CacheFormat.LeaseGetReply
                let arguments = [RedisArgument(token), RedisArgument(policy.leaseDuration.milliseconds), RedisArgument("\(early)")]
                do {
                    if let wanted = configuration.replicaAcknowledgement {
                        let (raw, acknowledged) = try await client.run(
                            CacheScripts.leaseGet, keys: keys.all, arguments: arguments,
                            waitingForReplicas: wanted.replicas, timeout: wanted.timeout)
                        reply = try CacheFormat.LeaseGetReply(raw)
                        if reply.role == .leader, acknowledged < wanted.replicas {
                            metrics.leasesUnacknowledged.increment()
                            logger.warning("a lease was taken but not acknowledged by enough replicas; loading anyway", metadata: [
                                "stampede.key": "\(key)", "stampede.replicas": "\(acknowledged) of \(wanted.replicas)",
                            ])
                        }
                    } else {
                        reply = try CacheFormat.LeaseGetReply(try await client.run(CacheScripts.leaseGet, keys: keys.all, arguments: arguments))
                    }
                } catch let error as RedisError {
                    redisError = error
                    action = machine.redisFailed()
                    continue
                }
                outageValues.redisAnswered(for: ExactKey(key), part: keyspacePart(of: key))
                if !reply.repairs.isEmpty {
                    metrics.corruptEntries.increment()
                    logger.debug("found foreign or unreadable data under the key's names and replaced it", metadata: [
                        "stampede.key": "\(key)", "stampede.repaired": "\(reply.repairs.names)",
                    ])
                }
                read = (Lease(name: key, token: token, fence: FencingToken(reply.fence)), sentAt, reply.now)
                action = machine.received(reply, now: clock.now)
                switch action {
                case .serve(_, .fresh, _), .serve(_, .stale, _), .lead: break
                default: metrics.leaseContended.increment()  // another caller holds the lease
                }

            case .serve(let entry, let served, let refresh):
                switch served {
                case .fresh:
                    LookupTrace.noteUnlessNoted(.hit)
                    metrics.hits.increment()
                    if let read { keepNear(key, entry: entry, redisNow: read.redisNow, sentAt: read.sentAt, seen: seen) }
                case .filled:
                    LookupTrace.note(.follower)
                    metrics.hits.increment()
                case .stale:
                    LookupTrace.note(.staleServed)
                    metrics.staleServed.increment()
                case .staleAfterWaitTimeout:
                    LookupTrace.note(.staleServed)
                    metrics.waitTimeouts.increment()
                    metrics.staleServed.increment()
                }
                if refresh, let read {
                    refreshInBackground(keys: keys, lease: read.lease, leasedAt: read.sentAt, policy: policy, logger: logger, load: load)
                }
                return Found(entry)

            case .lead:
                LookupTrace.note(.leader)
                metrics.misses.increment()
                guard let leader = machine.leader(), let read else { preconditionFailure("a lookup leads only after a read") }
                return try await lead(leader, keys: keys, lease: read.lease, leasedAt: read.sentAt, logger: logger, load: load)

            case .startListening(let limit):
                action = machine.listening(started: await events.ensureListening(within: limit), now: clock.now)

            case .wait(let deadline):
                LookupTrace.note(.follower)
                let event = await events.wait(for: key, after: seen, until: deadline)
                if let event { seen = event.generation }
                action = machine.heard(event.map { .init(kind: $0.kind, fill: $0.fill) }, now: clock.now)

            case .fail(let code, let message):
                if code == .waitTimedOut { metrics.waitTimeouts.increment() }
                throw StampedeError(code, message, underlying: code == .redisUnavailable ? redisError : nil)

            case .loadWithoutLease:
                LookupTrace.note(.leader)
                metrics.waitTimeouts.increment()
                logger.debug("wait timed out; loading without the lease", metadata: ["stampede.key": "\(key)"])
                metrics.loads.increment()
                return Found(bytes: try await load())

            case .loadWithoutRedis:
                LookupTrace.note(.withoutRedis)
                return try await loadWithoutRedis(key, policy: policy, load: load, cause: redisError, logger: logger)
            }
        }
    }

    /// The hit path, run in the first caller's own task before any lookup: a fresh entry
    /// costs one `HMGET` (a plain command, cheaper for Redis than a script), judged on
    /// Redis's clock as ``RedisClock`` last read it; twice a second one hit carries `TIME` as
    /// well, to read it again. `nil` when the entry is not plainly fresh (missing, stale,
    /// foreign, due for an early refresh, or too near the end of its fresh time for the
    /// clock's error) or Redis failed: ``lookup(_:policy:earlyRefreshDraw:load:)`` decides.
    nonisolated(nonsending) func hitRead(_ key: String, policy: CachePolicy, earlyRefreshDraw: Double) async -> Found? {
        // Watched only when a near cache must know that nothing changed during the read.
        let seen = near == nil ? nil : events.watch(key)
        defer { if seen != nil { events.unwatch(key) } }
        let sentAt = seen == nil ? nil : clock.now
        let command = CacheFormat.hitRead(namespace: configuration.namespace, key: key)
        let fields: [RedisValue]
        let now: Int
        if !redisClock.shouldRead() {
            guard case .array(let values)? = try? await client.send(command), let redisNow = redisClock.now() else { return nil }
            (fields, now) = (values, redisNow)
        } else {
            let timeSentAt = ContinuousClock.now
            guard let replies = try? await client.pipeline([["TIME"], command]),
                  case .success(.array(let time)) = replies[0], time.count == 2,
                  let seconds = time[0].int, let microseconds = time[1].int,
                  case .success(.array(let values)) = replies[1]
            else { return nil }
            redisClock.record(redisMilliseconds: Double(seconds) * 1000 + Double(microseconds) / 1000, sentAt: timeSentAt, receivedAt: .now)
            (fields, now) = (values, seconds * 1000 + microseconds / 1000)
        }
        outageValues.redisAnswered(for: ExactKey(key), part: keyspacePart(of: key))
        guard let entry = CacheFormat.entry(hashFields: fields),
              policy.freshness(of: entry, now: now, earlyRefreshDraw: earlyRefreshDraw) == .fresh
        else { return nil }
        metrics.hits.increment()
        if let seen, let sentAt { keepNear(key, entry: entry, redisNow: now, sentAt: sentAt, seen: seen) }
        return Found(entry)
    }

    /// Keeps a fresh entry in the near cache, if there is one and nothing changed the key
    /// since the lookup started, for at most its fresh time measured from before the read.
    private func keepNear(_ key: String, entry: StoredEntry, redisNow: Int, sentAt: ContinuousClock.Instant, seen: Int) {
        guard let near, let options = configuration.nearCache, events.isListening, events.generation(of: key) == seen else { return }
        let freshFor = Duration.milliseconds(entry.freshUntil - redisNow)
        near.store(.init(bytes: entry.bytes, expires: sentAt + min(freshFor, options.timeToLive)), for: key)
        // A change heard between the check and the store dropped the near entry before this
        // stored it: it moved the generation first, so it shows now.
        if events.generation(of: key) != seen { near.remove(key) }
    }

    /// The part of the keyspace whose answers give up the values kept for `key` during an
    /// outage (``OutageValues``): its hash slot on a cluster, all of it on one server.
    private func keyspacePart(of key: String) -> Int {
        client.configuration.isCluster ? HashSlot(key: CacheFormat.Keys(namespace: configuration.namespace, key: key).entry).value : 0
    }

    /// Redis could not be reached and the policy says to load without it: the value kept
    /// from an earlier load in the outage, else the loader's (kept for its time to live).
    private func loadWithoutRedis(_ key: String, policy: CachePolicy, load: Loader, cause: RedisError?, logger: Logger) async throws -> Found {
        let exactKey = ExactKey(key)
        if let kept = outageValues.entry(for: exactKey, now: clock.now) {
            return Found(bytes: kept.bytes)
        }
        metrics.loadsWithoutRedis.increment()
        logger.warning("Redis unavailable; loading without the cache", metadata: [
            "stampede.key": "\(key)", "stampede.error": "\(cause.map { "\($0.code): \($0.message)" } ?? "unknown")",
        ])
        metrics.loads.increment()
        let started = outageValues.startLoad(part: keyspacePart(of: key))
        let bytes: [UInt8]?
        do {
            bytes = try await load()
        } catch {
            outageValues.abandon(started)
            throw error
        }
        let keptFor = bytes == nil ? policy.negativeTimeToLive : policy.timeToLive
        outageValues.keep(.init(bytes: bytes, expires: clock.now + keptFor), for: exactKey, from: started)
        return Found(bytes: bytes)
    }

    /// The leader's part: the load runs apart (a load that outlives the soft timeout still
    /// fills the cache); the callers get what ``LeaderMachine`` answers.
    private func lead(
        _ leader: LeaderMachine, keys: CacheFormat.Keys, lease: Lease, leasedAt: ContinuousClock.Instant, logger: Logger,
        load: @escaping Loader
    ) async throws -> Found {
        let outcome = OneShot<Result<[UInt8]?, any Error>>()
        // The load runs apart from this task: its span, if any, is given the lookup's context.
        let context = configuration.tracing == nil ? nil : ServiceContext.current
        background.start {
            outcome.finish(await Result {
                try await self.loadAndFill(leader, keys: keys, lease: lease, leasedAt: leasedAt, logger: logger, context: context, load: load)
            })
        }
        let result: Result<[UInt8]?, any Error>?
        if let soft = leader.softTimeout {
            result = await outcome.wait(until: clock.now + soft, clock: clock)
        } else {
            result = await outcome.wait()
        }
        guard let result else {
            if Task.isCancelled { throw CancellationError() }
            logger.debug("soft timeout: serving the stale value while the load goes on", metadata: ["stampede.key": "\(leader.key)"])
            return try answer(leader.softTimeoutPassed(), key: leader.key, result: nil)
        }
        return try answer(leader.loadEnded(result), key: leader.key, result: result)
    }

    private func answer(_ answer: LeaderMachine.Answer, key: String, result: Result<[UInt8]?, any Error>?) throws -> Found {
        switch answer {
        case .bytes(let bytes):
            return Found(bytes: bytes)
        case .stale(let entry):
            metrics.staleServed.increment()
            if case .failure(let error)? = result {
                logger.debug("load failed; serving the stale value", metadata: ["stampede.key": "\(key)", "stampede.error": "\(error)"])
            }
            return Found(entry)
        case .fail(let failure):
            if case .failure(let error)? = result, failure == .loaderFailed { throw error }
            throw StampedeError(failure)
        }
    }

    private func refreshInBackground(
        keys: CacheFormat.Keys, lease: Lease, leasedAt: ContinuousClock.Instant, policy: CachePolicy, logger: Logger,
        load: @escaping Loader
    ) {
        background.start {
            let leader = LeaderMachine(refreshing: lease.name, policy: policy)
            do {
                _ = try await self.loadAndFill(leader, keys: keys, lease: lease, leasedAt: leasedAt, logger: logger, load: load)
            } catch {
                logger.debug("background refresh failed; the old value stays", metadata: [
                    "stampede.key": "\(lease.name)", "stampede.error": "\(error)",
                ])
            }
        }
    }

    /// Runs the loader under the lease (renewed by the watchdog, bounded by the hard
    /// timeout), then writes what ``LeaderMachine/write(after:jitterDraw:)`` says: a fenced
    /// fill, or the failure that frees the lease and tells the followers.
    func loadAndFill(
        _ leader: LeaderMachine, keys: CacheFormat.Keys, lease: Lease, leasedAt: ContinuousClock.Instant, logger: Logger,
        context: ServiceContext? = nil, load: @escaping Loader
    ) async throws -> [UInt8]? {
        metrics.loads.increment()
        let policy = leader.policy
        let start = clock.now
        let held = await watchdog.hold(
            lease, lockKey: keys.lock, duration: policy.leaseDuration, acquiredAt: leasedAt, timeout: policy.loaderHardTimeout
        ) { try await self.tracedLoad(lease.name, context: context) { try await load() } }
        let elapsed = clock.now - start
        metrics.loadTime.recordNanoseconds(Int64(elapsed / .nanoseconds(1)))

        let end: LeaderMachine.LoadEnd
        switch held {
        case .finished(.success(let bytes)): end = .loaded(bytes)
        case .finished(.failure(let error)): end = .failed(error)
        case .timedOut: end = .timedOut
        case .lost(let loss):
            metrics.leaseLost.increment()
            logger.warning("lease lost while loading", metadata: ["stampede.key": "\(lease.name)", "stampede.reason": "\(loss.reason)"])
            end = .lost(loss)
        }
        switch leader.write(after: end, jitterDraw: Double.random(in: 0...1)) {
        case .fill(let bytes, let fresh, let stale):
            await fill(keys: keys, lease: lease, bytes: bytes, fresh: fresh, stale: stale, loadTime: elapsed, logger: logger)
            return bytes
        case .reportFailure(let retryDelay, let failure):
            metrics.loadErrors.increment()
            _ = try? await client.run(
                CacheScripts.fail, keys: keys.all,
                arguments: [
                    RedisArgument(lease.token), RedisArgument(events.channel),
                    RedisArgument(CacheFormat.Message.failed(key: lease.name).payload),
                    RedisArgument(retryDelay > .zero ? retryDelay.milliseconds : 0), RedisArgument(policy.staleIfError.wholeMilliseconds),
                ])
            if case .failed(let error) = end { throw error }
            throw StampedeError(failure)
        }
    }

    private func fill(
        keys: CacheFormat.Keys, lease: Lease, bytes: [UInt8]?, fresh: Duration, stale: Duration, loadTime: Duration, logger: Logger
    ) async {
        let key = lease.name
        do {
            let stored = try await client.run(
                CacheScripts.fill, keys: keys.all,
                arguments: [
                    RedisArgument(lease.fence.value), RedisArgument(bytes: bytes ?? []),
                    RedisArgument(fresh.milliseconds), RedisArgument(stale.wholeMilliseconds),
                    RedisArgument(loadTime.milliseconds), bytes == nil ? "1" : "0", RedisArgument(lease.token),
                    RedisArgument(events.channel), RedisArgument(CacheFormat.Message.filled(key: key, entry: nil).payload),
                    RedisArgument(key),
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

extension StampedeCache.Found {
    init(_ entry: StoredEntry) {
        self.init(bytes: entry.bytes)
    }
}

extension StampedeError {
    init(_ failure: LeaderMachine.Failure) {
        switch failure {
        case .code(let code, let message): self.init(code, message)
        case .loaderFailed: self.init(.loadFailedElsewhere, "the loader failed")
        }
    }
}
