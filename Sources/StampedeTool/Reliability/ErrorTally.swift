/// Failed reads of a reliability check: counted, not fatal, with a few messages to show.
struct ErrorTally: Codable, Sendable {
    private(set) var count = 0
    /// Up to three distinct messages.
    private(set) var samples: [String] = []

    mutating func record(_ message: String) {
        count += 1
        if samples.count < 3 && !samples.contains(message) { samples.append(message) }
    }

    mutating func merge(_ other: ErrorTally) {
        count += other.count
        for sample in other.samples where samples.count < 3 && !samples.contains(sample) { samples.append(sample) }
    }
}
