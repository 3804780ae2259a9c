/// Which reads of an invalidation check got an older version than they should have: the
/// pure computation, apart from processes and Redis, so that it can be checked by hand.
///
/// Key `k`'s origin version `V` was set by an invalidation that returned at `T_k(V)`. A read
/// of `k` that started at `s` and got version `v`:
/// - started after an invalidation when some invalidation of `k` returned before `s`;
/// - is stale when `v < max{V : T_k(V) < s}`: an invalidation that set a newer version had
///   returned before the read started, and the read still got the older one;
/// - a stale read's window is `s - S_k(v)`, where `S_k(v) = min{T_k(V) : V > v}` is when
///   the first invalidation that superseded `v` returned (with one writer per key, that is
///   `T_k(v + 1)`). A read is stale exactly when `s > S_k(v)`.
struct InvalidationAudit {
    /// One line of the invalidation log: the writer set `key`'s origin to `version`, and
    /// the invalidation that followed returned at `returnedAt` (CLOCK_MONOTONIC ns).
    struct Invalidation: Equatable, Sendable {
        var key: Int
        var version: Int
        var returnedAt: Int

        /// The log's line: `k<key> <version> <returnedAt>`.
        var line: String { "\(ReliabilityKeys.key(key)) \(version) \(returnedAt)" }

        init(key: Int, version: Int, returnedAt: Int) {
            self.key = key
            self.version = version
            self.returnedAt = returnedAt
        }

        init?(line: String) {
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0].hasPrefix("k"), let key = Int(parts[0].dropFirst()),
                  let version = Int(parts[1]), let returnedAt = Int(parts[2]) else { return nil }
            self.init(key: key, version: version, returnedAt: returnedAt)
        }
    }

    struct Findings: Sendable {
        var reads = 0
        var readsAfterInvalidation = 0
        var staleReads = 0
        var staleWindows = StaleWindows()
    }

    private(set) var findings = Findings()
    /// Per key: when its first invalidation returned (`Int.max`: never).
    private let firstReturn: [Int]
    /// Per key, per version `v`: `S_k(v)`, when the first invalidation that set a newer
    /// version returned. Versions past the end were never superseded.
    private let supersededAt: [[Int]]

    /// `invalidations` in any order; those of keys outside `0..<keys` are ignored.
    init(invalidations: [Invalidation], keys: Int) {
        var firstReturn = [Int](repeating: .max, count: keys)
        var returnedAt = [[Int: Int]](repeating: [:], count: keys)
        for invalidation in invalidations where (0..<keys).contains(invalidation.key) {
            firstReturn[invalidation.key] = min(firstReturn[invalidation.key], invalidation.returnedAt)
            returnedAt[invalidation.key][invalidation.version] = min(returnedAt[invalidation.key][invalidation.version] ?? .max, invalidation.returnedAt)
        }
        supersededAt = returnedAt.map { byVersion in
            guard let newest = byVersion.keys.max(), newest > 0 else { return [] }
            // S(v) = min(T(v + 1), S(v + 1)), from the newest version down.
            var superseded = [Int](repeating: .max, count: newest)
            var earliest = Int.max
            for version in stride(from: newest - 1, through: 0, by: -1) {
                earliest = min(earliest, byVersion[version + 1] ?? .max)
                superseded[version] = earliest
            }
            return superseded
        }
        self.firstReturn = firstReturn
    }

    /// Adds one reader's reads to the findings.
    mutating func add(_ reads: ReadLog) {
        for (key, byVersion) in reads.starts.enumerated() where key < firstReturn.count {
            for (version, starts) in byVersion.enumerated() where !starts.isEmpty {
                let superseded = version < supersededAt[key].count ? supersededAt[key][version] : .max
                findings.reads += starts.count
                for start in starts {
                    if start > firstReturn[key] { findings.readsAfterInvalidation += 1 }
                    if start > superseded {
                        findings.staleReads += 1
                        findings.staleWindows.record(milliseconds: Double(start - superseded) / 1e6)
                    }
                }
            }
        }
    }
}
