import Foundation

/// The conversation between `stampede reliability` and its worker processes: one line per
/// message, workers on standard output, the coordinator on the worker's standard input.
///
///     worker:      ready                  connected, scripts loaded, subscribed
///     coordinator: go <CLOCK_MONOTONIC ns> every worker starts its readers at that instant
///   invalidation check, after the readers' duration:
///     coordinator: writer-done            the invalidation log in Redis is complete
///   outage check, whenever the coordinator has seen enough:
///     coordinator: stop <down ns> <up ns> readers stop; Redis was down from <down> to <up>
///     worker:      result <JSON>          its report (`Report`)
///     coordinator: exit                   the worker shuts down
///
/// Workers speak ``WorkerMessage``, as the storm's do; any other line a worker prints (an
/// error message, say) is kept as a diagnostic.

/// What the coordinator of `stampede reliability` tells its workers.
enum ReliabilityOrder: Equatable, Sendable {
    /// Start at this CLOCK_MONOTONIC time, in nanoseconds.
    case go(startAt: Int)
    /// The writer is done: the invalidation log is complete.
    case writerDone
    /// Stop reading; Redis was unreachable from `downAt` to `upAt` (CLOCK_MONOTONIC ns).
    case stop(downAt: Int, upAt: Int)
    case exit

    var line: String {
        switch self {
        case .go(let startAt): return "go \(startAt)"
        case .writerDone: return "writer-done"
        case .stop(let downAt, let upAt): return "stop \(downAt) \(upAt)"
        case .exit: return "exit"
        }
    }

    init?(line: String) {
        let parts = line.split(separator: " ")
        switch (parts.first, parts.count) {
        case ("go", 2):
            guard let startAt = Int(parts[1]) else { return nil }
            self = .go(startAt: startAt)
        case ("writer-done", 1): self = .writerDone
        case ("stop", 3):
            guard let downAt = Int(parts[1]), let upAt = Int(parts[2]) else { return nil }
            self = .stop(downAt: downAt, upAt: upAt)
        case ("exit", 1): self = .exit
        default: return nil
        }
    }
}
