/// The leader's part of a lookup, without I/O: what its callers get while and after it
/// loads, and what it writes to Redis when the load ends.
///
/// The load itself runs apart from the callers (a load that outlives the soft timeout still
/// fills the cache); with a stale value at hand and a soft timeout, the callers get the
/// stale value when the soft timeout passes first.
struct LeaderMachine {
    /// What the callers get.
    enum Answer: Equatable {
        case bytes([UInt8]?)
        /// The stale entry, in place of the load's result or error.
        case stale(StoredEntry)
        case fail(Failure)
    }

    /// How the load under the lease ended.
    enum LoadEnd: Sendable {
        case loaded([UInt8]?)
        case failed(any Error)
        /// The hard timeout passed first.
        case timedOut
        case lost(LeaseLoss)
    }

    /// Why the callers get an error.
    enum Failure: Equatable {
        /// What the loader threw, as it threw it.
        case loaderFailed
        case code(StampedeError.Code, String)
    }

    /// What the leader writes when the load ended.
    enum Write: Equatable {
        /// Store the value (fenced), fresh for `fresh` and kept for stale serving `stale` longer.
        case fill([UInt8]?, fresh: Duration, stale: Duration)
        /// Free the lease and tell the followers; with a stale value within stale-if-error,
        /// serve it as fresh for `retryDelay`, so that the failing origin is not retried by
        /// every caller at once.
        case reportFailure(retryDelay: Duration, Failure)
    }

    let key: String
    let policy: CachePolicy
    /// The entry that may be served while loading: past fresh, before stale-until.
    let stale: StoredEntry?
    /// The entry that may be served in place of the load's error (stale-if-error).
    let servableOnError: StoredEntry?

    /// The leader of a lookup whose lease-get script answered `reply`.
    init(key: String, policy: CachePolicy, reply: CacheFormat.LeaseGetReply) {
        self.key = key
        self.policy = policy
        self.stale = reply.entry.flatMap { reply.now < $0.staleUntil ? $0 : nil }
        self.servableOnError = reply.servableOnError(policy)
    }

    /// The leader of a background refresh: its callers were served already.
    init(refreshing key: String, policy: CachePolicy) {
        self.key = key
        self.policy = policy
        self.stale = nil
        self.servableOnError = nil
    }

    /// How long the callers wait for the load before they get the stale value; `nil` waits
    /// for the load.
    var softTimeout: Duration? {
        stale == nil ? nil : policy.loaderSoftTimeout
    }

    /// The soft timeout passed before the load ended.
    func softTimeoutPassed() -> Answer {
        stale.map { .stale($0) } ?? .fail(.code(.loaderTimedOut, "the loader for '\(key)' ran past its soft timeout"))
    }

    /// The load ended (or failed to) before the soft timeout: the callers' answer.
    func loadEnded(_ result: Result<[UInt8]?, any Error>) -> Answer {
        switch result {
        case .success(let bytes): return .bytes(bytes)
        case .failure:
            if let servableOnError { return .stale(servableOnError) }
            return .fail(.loaderFailed)
        }
    }

    /// What to write for a load that ended with `end`. `jitterDraw` is a number in 0...1
    /// that spreads the fresh time over ``CachePolicy/jitter``.
    func write(after end: LoadEnd, jitterDraw: Double) -> Write {
        let failure: Failure
        switch end {
        case .loaded(let bytes):
            let (fresh, stale) = policy.storedTimes(isNegative: bytes == nil, jitterDraw: jitterDraw)
            return .fill(bytes, fresh: fresh, stale: stale)
        case .failed:
            failure = .loaderFailed
        case .timedOut:
            failure = .code(.loaderTimedOut, "the loader for '\(key)' ran past \(policy.loaderHardTimeout ?? .zero)")
        case .lost(let loss):
            failure = .code(.leaseLost, loss.description)
        }
        let retries = policy.staleIfError > .zero && policy.retryAfterError > .zero
        return .reportFailure(retryDelay: retries ? policy.retryAfterError : .zero, failure)
    }
}
