/// Every key a reliability check writes lives under ``prefix`` (or `{` + prefix, the cache's
/// hash-tagged entries), one namespace per run and check, so that the run can find and
/// delete exactly its own.
enum ReliabilityKeys {
    static let prefix = "stampede:reliability:"

    /// A check's namespace: `stampede:reliability:<run>:<check>`, the cache's and the
    /// simulated origin's.
    static func namespace(run: String, check: ReliabilityCheck) -> String { "\(prefix)\(run):\(check.rawValue)" }

    /// The `SCAN MATCH` pattern of every key of a run's checks.
    static func pattern(run: String) -> String { "*\(prefix)\(run):*" }

    /// The cache key of key number `index`.
    static func key(_ index: Int) -> String { "k\(index)" }

    /// The origin's version of a cache key: a counter the writer increments and the loader
    /// reads (absent: version 0).
    static func origin(_ namespace: String, key: String) -> String { "\(namespace):origin:\(key)" }

    /// The invalidation log, a list: one ``InvalidationAudit/Invalidation/line`` per
    /// invalidation, in the order the writer made them.
    static func invalidationLog(_ namespace: String) -> String { "\(namespace):invalidations" }

    /// How long the keys the writer changes outlive a check's start: an hour past the
    /// longest it can run, so that a coordinator killed outright leaves nothing for good.
    static func expiryMilliseconds(durationMs: Int) -> Int { durationMs + 3_600_000 }
}
