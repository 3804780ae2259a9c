/// The reads of one reader task in an invalidation check, kept as compactly as the audit
/// allows: per key and per version read, the instants (CLOCK_MONOTONIC, nanoseconds) at
/// which the reads started. The audit needs nothing else of a read, and a reader that never
/// suspends (near-cache hits) pays one append per read, with no lock and no object.
struct ReadLog: Sendable {
    /// Reads one process records at most, over all its tasks: eight bytes each, so that a
    /// long run with the near cache cannot exhaust memory. A task that reaches its share
    /// stops reading.
    static let maximumReadsPerProcess = 16_000_000

    /// `starts[key][version]`: when the reads of `key` that got `version` started.
    private(set) var starts: [[[Int]]]
    private(set) var count = 0

    init(keys: Int) {
        starts = Array(repeating: [], count: keys)
    }

    /// Records a read of key number `key` (`0..<keys`) that started at `startedAt` and got
    /// `version` (at least 0: the origin's versions count up from 0).
    mutating func record(key: Int, version: Int, startedAt: Int) {
        if version >= starts[key].count {
            starts[key].append(contentsOf: repeatElement([], count: version + 1 - starts[key].count))
        }
        starts[key][version].append(startedAt)
        count += 1
    }
}
