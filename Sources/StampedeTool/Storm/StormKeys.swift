import Stampede

/// Every key a storm writes lives under ``prefix`` (or `{` + prefix, the cache's hash-tagged
/// entries), one namespace per run, so that the storm can find and delete exactly its own.
enum StormKeys {
    static let prefix = "stampede:storm:"

    /// A run's namespace: `stampede:storm:<run>:<scenario>:<strategy>:<repeat>`.
    static func namespace(run: String, scenario: Scenario, strategy: Strategy, repeat: Int) -> String {
        "\(prefix)\(run):\(scenario.rawValue):\(strategy.rawValue):\(`repeat`)"
    }

    /// The `SCAN MATCH` pattern of every key of a storm's runs.
    static func pattern(run: String) -> String { "*\(prefix)\(run):*" }

    static func isOwn(_ key: String) -> Bool { key.hasPrefix(prefix) || key.hasPrefix("{" + prefix) }

    /// The lock the lock scenario's callers contend for, and the fence `RedisMutex` keeps
    /// for it (`PREFIX{NAME}:fence`, the prefix being the namespace and a colon).
    static let lockName = "lock"
    static func mutexFence(_ namespace: String) -> String { RedisMutex.Keys(prefix: namespace + ":", name: lockName).fence }

    /// The keys that the workers change but that nothing else gives an expiry: the
    /// coordinator creates them with one before the workers start, so that a storm whose
    /// coordinator is killed outright (no clean-up) leaves nothing in Redis for good.
    /// (`released-at` is written whole by every holder, with the same expiry.)
    static func counters(_ namespace: String) -> [String] {
        [originCounter(namespace), holders(namespace), mutexFence(namespace)]
    }

    /// How long a storm's counters outlive its start: an hour past the longest it can run.
    static func expiryMilliseconds(durationMs: Int, loadMs: Int) -> Int { durationMs + 4 * loadMs + 3_600_000 }

    static func originCounter(_ namespace: String) -> String { namespace + ":origin-calls" }
    static func releasedAt(_ namespace: String) -> String { namespace + ":released-at" }
    static func holders(_ namespace: String) -> String { namespace + ":holders" }
    static func naiveLock(_ namespace: String) -> String { namespace + ":naive-lock" }
    /// Cache-aside's plain key (naive and local strategies).
    static func aside(_ namespace: String, _ key: String) -> String { "\(namespace):aside:\(key)" }
}

/// The cache policies a storm runs with.
enum StormPolicy {
    /// Cache-aside's expiry (naive and local): longer than any storm.
    static let asideTimeToLiveMs = 3_600_000

    /// The workers' policy: values stay fresh through the storm; in the stale scenario,
    /// stale-while-revalidate is on; leases and waits long enough for the simulated origin.
    static func workers(scenario: Scenario, loadMs: Int) -> CachePolicy {
        CachePolicy(
            timeToLive: .seconds(3600),
            staleWhileRevalidate: scenario == .stale ? .seconds(300) : .zero,
            earlyRefreshBeta: nil,
            leaseDuration: max(.seconds(10), .milliseconds(3 * loadMs)),
            waitTimeout: max(.seconds(5), .milliseconds(4 * loadMs + 2000)))
    }

    /// The stale scenario's pre-fill: fresh for a moment, then stale for minutes.
    static let staleFill = CachePolicy(timeToLive: .milliseconds(20), staleWhileRevalidate: .seconds(300), earlyRefreshBeta: nil)
}
