import Foundation
import Synchronization

/// Where a storm is: a live line on a terminal; on a pipe or file, only the notes (one line
/// per finished run), so that logs stay readable.
final class Progress: Sendable {
    let isLive: Bool
    private let lineShown = Mutex(false)

    init(isLive: Bool = isatty(STDOUT_FILENO) == 1) { self.isLive = isLive }

    /// Replaces the live line (terminal only).
    func show(_ text: String) {
        guard isLive else { return }
        lineShown.withLock { shown in
            try? FileHandle.standardOutput.write(contentsOf: Data("\r\u{1B}[K\(text)".utf8))
            shown = true
        }
    }

    func clear() {
        guard isLive else { return }
        lineShown.withLock { shown in
            if shown { try? FileHandle.standardOutput.write(contentsOf: Data("\r\u{1B}[K".utf8)) }
            shown = false
        }
    }

    /// A line that stays.
    func note(_ line: String) {
        clear()
        say(line)
    }
}
