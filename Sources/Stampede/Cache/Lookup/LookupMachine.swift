/// The per-key protocol of one lookup, without I/O: from what the lease-get script decided,
/// the policy, the time and what the events said, the next thing to do. The lookup's I/O
/// shell (``StampedeCache``'s `lookup`) carries each action out and reports back.
///
/// ```
/// received(reply) ─┬─ fresh, or stale within stale-while-revalidate ──> serve (refresh if leader)
///                  ├─ leader ──> lead (then LeaderMachine)
///                  └─ follower ─┬─ not subscribed yet ──> startListening ──> readAgain
///                               ├─ past the wait deadline ──> serve stale / fail / loadWithoutLease
///                               └─ wait ──> heard(fill) ──> serve
///                                           heard(failure) ──> serve stale / fail
///                                           heard(anything else, or nothing) ──> readAgain
/// ```
struct LookupMachine {
    enum Served: Equatable {
        /// Fresh in Redis.
        case fresh
        /// Past its fresh time: stale-while-revalidate, or stale-if-error in place of an error.
        case stale
        /// From another caller's fill message.
        case filled
        /// Stale, in place of an error when the wait for another caller's load timed out.
        case staleAfterWaitTimeout
    }

    enum Action: Equatable {
        /// Hand `entry` to the callers; `refresh`: this caller holds the lease and refreshes
        /// the entry in the background.
        case serve(StoredEntry, Served, refresh: Bool)
        /// This caller holds the lease: load and fill, as ``leader()`` decides.
        case lead
        /// Start the subscription, waiting for it at most this long, then report back with
        /// ``LookupMachine/listening(started:now:)``: a fill after the last read would not
        /// have been heard.
        case startListening(within: Duration)
        /// Wait for an event on the key until this instant, then report back with
        /// ``LookupMachine/heard(_:now:)``.
        case wait(until: ContinuousClock.Instant)
        /// Run the lease-get script again.
        case readAgain
        case fail(StampedeError.Code, String)
        /// The wait timed out and the policy says to load without the lease.
        case loadWithoutLease
        /// Redis is unavailable and the policy says to load without it.
        case loadWithoutRedis
    }

    /// What a waiting caller heard about its key.
    struct Event: Equatable {
        var kind: CacheEvents.Kind
        /// The filled entry, when it came with the message.
        var fill: StoredEntry?
    }

    let key: String
    let policy: CachePolicy
    /// However many rounds it takes (a leader that died, a lock that is never released), a
    /// caller waits for others at most until then.
    let waitDeadline: ContinuousClock.Instant
    private var isListening: Bool
    /// The last reply, for a stale value to serve in place of an error.
    private var reply: CacheFormat.LeaseGetReply?

    init(key: String, policy: CachePolicy, startedAt: ContinuousClock.Instant, isListening: Bool) {
        self.key = key
        self.policy = policy
        self.waitDeadline = startedAt + policy.waitTimeout
        self.isListening = isListening
    }

    /// The lease-get script answered.
    mutating func received(_ reply: CacheFormat.LeaseGetReply, now: ContinuousClock.Instant) -> Action {
        self.reply = reply
        switch (reply.state, reply.role) {
        case (.fresh(let entry), _):
            // A leader here won the early-refresh draw: it serves the fresh value and refreshes,
            // or, refreshing by the lease holder, loads the new one.
            if reply.role == .leader && policy.staleRefresh == .byTheLeaseHolder { return .lead }
            return .serve(entry, .fresh, refresh: reply.role == .leader)
        case (.stale(let entry), _) where policy.freshness(of: entry, now: reply.now, earlyRefreshDraw: 0) == .stale:
            if reply.role == .leader && policy.staleRefresh == .byTheLeaseHolder { return .lead }
            return .serve(entry, .stale, refresh: reply.role == .leader)
        case (_, .leader):
            return .lead
        case (_, .none), (_, .follower):
            if !isListening, waitDeadline > now { return .startListening(within: waitDeadline - now) }
            return waitForOthers(now: now)
        }
    }

    /// The leader's decisions, after ``Action/lead``.
    func leader() -> LeaderMachine? {
        reply.map { LeaderMachine(key: key, policy: policy, reply: $0) }
    }

    /// The subscription was asked for after ``Action/startListening(within:)``.
    mutating func listening(started: Bool, now: ContinuousClock.Instant) -> Action {
        isListening = started
        // Subscribed only now: read again before waiting, so no fill is missed.
        return started ? .readAgain : waitForOthers(now: now)
    }

    /// The wait of ``Action/wait(until:)`` ended: with an event on the key, or `nil` when its
    /// time ran out.
    mutating func heard(_ event: Event?, now: ContinuousClock.Instant) -> Action {
        guard let event else { return .readAgain }
        switch event.kind {
        case .filled:
            // The value came with the message: no need to read it back.
            guard let fill = event.fill else { return .readAgain }
            return .serve(fill, .filled, refresh: false)
        case .failed:
            if let stale = servableOnError { return .serve(stale, .stale, refresh: false) }
            return .fail(.loadFailedElsewhere, "the loader for '\(key)' failed in another process")
        case .invalidated, .unknown:
            return .readAgain
        }
    }

    /// The lease-get script could not run.
    func redisFailed() -> Action {
        switch policy.whenRedisUnavailable {
        case .fail: .fail(.redisUnavailable, "cannot look up '\(key)'")
        case .loadLocally: .loadWithoutRedis
        }
    }

    /// Another caller holds the lease: wait for its fill, at most until the wait deadline.
    private func waitForOthers(now: ContinuousClock.Instant) -> Action {
        guard now < waitDeadline else {
            if let stale = servableOnError { return .serve(stale, .staleAfterWaitTimeout, refresh: false) }
            switch policy.whenWaitTimesOut {
            case .fail: return .fail(.waitTimedOut, "another caller's load of '\(key)' did not finish within \(policy.waitTimeout)")
            case .loadLocally: return .loadWithoutLease
            }
        }
        // Never past the leader's lease: if it died, take over when it expires.
        let leaseEnds = now + .milliseconds(max(reply?.lockTTL ?? 0, 1)) + .milliseconds(2)
        return .wait(until: min(waitDeadline, leaseEnds))
    }

    /// The stale entry of the last reply, if stale-if-error allows serving it in place of
    /// an error.
    private var servableOnError: StoredEntry? {
        guard let reply else { return nil }
        return reply.servableOnError(policy)
    }

}

extension CacheFormat.LeaseGetReply {
    /// The entry, if stale-if-error allows serving it in place of an error at this reply's time.
    func servableOnError(_ policy: CachePolicy) -> StoredEntry? {
        guard let entry, now < entry.freshUntil + policy.staleIfError.wholeMilliseconds else { return nil }
        return entry
    }
}
