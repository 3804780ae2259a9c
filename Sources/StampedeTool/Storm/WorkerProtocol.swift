import Foundation

/// The conversation between `stampede storm` and its worker processes: one line per message,
/// workers on standard output, the coordinator on the worker's standard input.
///
///     worker:      ready                  connected, scripts loaded, subscribed
///     coordinator: go <CLOCK_MONOTONIC ns> every worker starts its callers at that instant
///     worker:      result <JSON>          a WorkerReport, once its callers are done
///     coordinator: exit                   after reading Redis's counters; the worker shuts down
///
/// Any other line a worker prints (an error message, say) is kept as a diagnostic. The
/// report is the run's own (`WorkerReport` for a storm); `stampede reliability` speaks the
/// same two messages.
enum WorkerMessage<Report: Codable & Sendable>: Sendable {
    case ready
    case result(Report)

    var line: String {
        switch self {
        case .ready: return "ready"
        case .result(let report):
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            return "result " + String(decoding: try! encoder.encode(report), as: UTF8.self)
        }
    }

    /// The message on `line`, or `nil` when it is not one (a diagnostic).
    init?(line: String) {
        if line == "ready" {
            self = .ready
        } else if line.hasPrefix("result "), let report = try? JSONDecoder().decode(Report.self, from: Data(line.dropFirst(7).utf8)) {
            self = .result(report)
        } else {
            return nil
        }
    }
}

extension WorkerMessage: Equatable where Report: Equatable {}

/// A worker's message as a fleet's waits read it, whatever the run's report.
protocol WorkerReply: Sendable {
    associatedtype Report: Sendable
    var isReady: Bool { get }
    var report: Report? { get }
}

extension WorkerMessage: WorkerReply {
    var isReady: Bool {
        if case .ready = self { return true }
        return false
    }

    var report: Report? {
        if case .result(let report) = self { return report }
        return nil
    }
}

enum CoordinatorMessage: Equatable {
    /// Start at this CLOCK_MONOTONIC time, in nanoseconds (one clock for every process on
    /// the machine).
    case go(startAt: Int)
    case exit

    var line: String {
        switch self {
        case .go(let startAt): return "go \(startAt)"
        case .exit: return "exit"
        }
    }

    init?(line: String) {
        if line == "exit" {
            self = .exit
        } else if line.hasPrefix("go "), let startAt = Int(line.dropFirst(3)) {
            self = .go(startAt: startAt)
        } else {
            return nil
        }
    }
}

/// What one worker process saw.
struct WorkerReport: Codable, Equatable, Sendable {
    /// Calls its callers made (lookups, or lock acquisitions).
    var requests = 0
    /// Calls that failed other than by a timeout, or returned a wrong value.
    var errors = 0
    /// Calls that failed by a timeout (waiting for a fill or a lock, a loader, a command).
    var timeouts = 0
    /// Lookups answered with the previous (stale) value.
    var staleServed = 0
    /// Each call's latency: the lookup, or the wait for the lock.
    var latency = LatencyHistogram()
    /// Lock scenario: from one holder's release to the next holder's acquisition.
    var handoff = LatencyHistogram()
    /// Lock scenario: acquisitions that found another holder inside the critical section.
    var violations = 0
    /// Commands the worker sent for the storm's own bookkeeping (the simulated origin's
    /// counter, the lock scenario's checks), to take away from Redis's count.
    var bookkeepingCommands = 0
    /// Commands the worker's client sent during the storm, less the bookkeeping.
    var clientCommands = 0
    /// From the start instant until the last caller was done.
    var wallMilliseconds = 0.0
    /// Up to three distinct error messages, for the report.
    var errorSamples: [String] = []

    mutating func merge(_ other: WorkerReport) {
        requests += other.requests
        errors += other.errors
        timeouts += other.timeouts
        staleServed += other.staleServed
        latency.merge(other.latency)
        handoff.merge(other.handoff)
        violations += other.violations
        bookkeepingCommands += other.bookkeepingCommands
        clientCommands += other.clientCommands
        wallMilliseconds = max(wallMilliseconds, other.wallMilliseconds)
        for sample in other.errorSamples where errorSamples.count < 3 && !errorSamples.contains(sample) {
            errorSamples.append(sample)
        }
    }
}
