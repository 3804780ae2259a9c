/// How long after the invalidation that superseded its value each stale read started, in
/// milliseconds: every window while there are at most ``sampleLimit``, else every n-th one
/// (n a power of two; between half the limit and the limit of them) beside the exact count
/// and maximum. Bounded in memory and on the wire however many reads were stale, and the
/// same for the same reads; processes' windows are combined by
/// ``milliseconds(atQuantile:of:)``, which weighs each sample by the windows it stands for.
struct StaleWindows: Codable, Sendable {
    static let sampleLimit = 10_000

    private(set) var count = 0
    private(set) var maximumMilliseconds = 0.0
    /// Every window, or every ``stride``-th, in the order recorded.
    private(set) var sampleMilliseconds: [Double] = []
    /// Which windows the sample keeps: those whose place in the order recorded is a
    /// multiple of it. Doubles, and every other sampled window goes, when the sample is full.
    private var stride = 1

    init() {}

    mutating func record(milliseconds: Double) {
        count += 1
        maximumMilliseconds = max(maximumMilliseconds, milliseconds)
        guard (count - 1) % stride == 0 else { return }
        sampleMilliseconds.append(milliseconds)
        if sampleMilliseconds.count > Self.sampleLimit {
            sampleMilliseconds = sampleMilliseconds.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            stride *= 2
        }
    }

    /// The window at quantile `q` (0...1) over every process's windows, each sampled window
    /// standing for `count / sample size` windows of its process; `nil` when none was stale.
    /// The maximum (`q` = 1) is exact.
    static func milliseconds(atQuantile q: Double, of parts: [StaleWindows]) -> Double? {
        let total = parts.reduce(0) { $0 + $1.count }
        guard total > 0 else { return nil }
        if q >= 1 { return parts.map(\.maximumMilliseconds).max() }
        let weighted = parts.flatMap { part in
            part.sampleMilliseconds.map { ($0, Double(part.count) / Double(part.sampleMilliseconds.count)) }
        }.sorted { $0.0 < $1.0 }
        // The smallest window with at least q of the weight at or below it: with every
        // window present, the one at rank ceil(q * count).
        let target = max(1, (q * Double(total)).rounded(.up))
        var seen = 0.0
        for (window, weight) in weighted {
            seen += weight
            // Sampling weights are fractions: a hair of rounding must not skip the window.
            if seen >= target * (1 - 1e-9) { return window }
        }
        return weighted.last?.0
    }

    private enum CodingKeys: String, CodingKey {
        case count, maximumMilliseconds = "max_ms", sampleMilliseconds = "sample_ms", stride
    }
}
