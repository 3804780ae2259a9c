import Foundation
import Synchronization

/// Messages read from a pipe on a thread of their own, for a task to take in order. The
/// reader polls: a storm's messages are few, and the start instant is sent well ahead.
final class LineInbox<Message: Sendable>: Sendable {
    private let state = Mutex<(messages: [Message], closed: Bool)>(([], false))
    /// Lines that were not messages (a failing process's error output).
    private let others = Mutex<[String]>([])

    /// Reads `handle` line by line until end-of-file; `parse` turns a line into a message.
    init(reading handle: FileHandle, parse: @escaping @Sendable (String) -> Message?) {
        Thread.detachNewThread { [self] in
            var pending = Data()
            while case let chunk = handle.availableData, !chunk.isEmpty {
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    if let message = parse(line) {
                        state.withLock { $0.messages.append(message) }
                    } else {
                        others.withLock { $0.append(line) }
                    }
                }
            }
            state.withLock { $0.closed = true }
        }
    }

    enum Taken {
        case message(Message)
        /// The pipe is closed and every message taken.
        case closed
        case none
    }

    /// The next message if one has arrived, without waiting.
    func take() -> Taken {
        state.withLock { state in
            if !state.messages.isEmpty { return .message(state.messages.removeFirst()) }
            return state.closed ? .closed : .none
        }
    }

    /// The next message; `nil` once the pipe is closed and every message taken, or after
    /// `limit`.
    func next(within limit: Duration) async -> Message? {
        let deadline = ContinuousClock.now + limit
        while true {
            switch take() {
            case .message(let message): return message
            case .closed: return nil
            case .none:
                if ContinuousClock.now >= deadline || Task.isCancelled { return nil }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    /// The last lines that were not messages.
    func lastOtherLines(_ count: Int) -> [String] { others.withLock { Array($0.suffix(count)) } }
}
