import Foundation

/// Latencies in logarithmic buckets 1% wide, from 1 microsecond up: constant memory however
/// long a storm runs, cheap to record from one task, and mergeable across tasks and
/// processes. Percentiles are accurate to the bucket width; the maximum is exact.
struct LatencyHistogram: Codable, Equatable, Sendable {
    /// Bucket `i` holds latencies in `[growth^i, growth^(i+1))` microseconds.
    static let growth = 1.01
    private static let logGrowth = log(growth)
    /// 1.01^2600 microseconds is about 48 hours, past the longest storm (`--duration` is at
    /// most an hour): nothing a storm measures falls outside.
    private static let bucketCount = 2_600

    /// Empty until the first latency: every task of a worker keeps histograms, most of them
    /// (the lock scenario's hand-off, outside it) never used.
    private(set) var counts: [Int] = []
    private(set) var count = 0
    private(set) var maximumMicroseconds = 0.0

    init() {}

    mutating func record(microseconds: Double) {
        let index = microseconds < 1 ? 0 : min(Self.bucketCount - 1, Int(log(microseconds) / Self.logGrowth))
        allocateBuckets()
        counts[index] += 1
        count += 1
        maximumMicroseconds = max(maximumMicroseconds, microseconds)
    }

    mutating func record(_ duration: Duration) {
        record(microseconds: Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) * 1e-12)
    }

    private mutating func allocateBuckets() {
        if counts.isEmpty { counts = Array(repeating: 0, count: Self.bucketCount) }
    }

    mutating func merge(_ other: LatencyHistogram) {
        if !other.counts.isEmpty {
            allocateBuckets()
            for index in counts.indices { counts[index] += other.counts[index] }
        }
        count += other.count
        maximumMicroseconds = max(maximumMicroseconds, other.maximumMicroseconds)
    }

    /// The latency at quantile `q` (0...1) in milliseconds: the middle of its bucket, never
    /// above the maximum; 0 when nothing was recorded.
    func milliseconds(atQuantile q: Double) -> Double {
        guard count > 0 else { return 0 }
        if q >= 1 { return maximumMicroseconds / 1000 }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += bucketCount
            if seen >= rank {
                let middle = pow(Self.growth, Double(index) + 0.5)
                return min(middle, maximumMicroseconds) / 1000
            }
        }
        return maximumMicroseconds / 1000
    }

    /// How many recorded latencies exceed `milliseconds` (to the bucket width).
    func count(above milliseconds: Double) -> Int {
        let threshold = milliseconds * 1000
        var above = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 && pow(Self.growth, Double(index)) >= threshold {
            above += bucketCount
        }
        return above
    }

    // Sparse on the wire: a worker's report stays one short line.
    private enum CodingKeys: String, CodingKey { case buckets, count, maximumMicroseconds }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        let pairs = try container.decode([[Int]].self, forKey: .buckets)
        for pair in pairs {
            guard pair.count == 2, (0..<Self.bucketCount).contains(pair[0]), pair[1] >= 0 else {
                throw DecodingError.dataCorruptedError(forKey: .buckets, in: container, debugDescription: "bad bucket \(pair)")
            }
            allocateBuckets()
            counts[pair[0]] += pair[1]
        }
        count = try container.decode(Int.self, forKey: .count)
        maximumMicroseconds = try container.decode(Double.self, forKey: .maximumMicroseconds)
        guard count == counts.reduce(0, +) else {
            throw DecodingError.dataCorruptedError(forKey: .count, in: container, debugDescription: "count does not match the buckets")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(counts.enumerated().filter { $0.element > 0 }.map { [$0.offset, $0.element] }, forKey: .buckets)
        try container.encode(count, forKey: .count)
        try container.encode(maximumMicroseconds, forKey: .maximumMicroseconds)
    }
}
