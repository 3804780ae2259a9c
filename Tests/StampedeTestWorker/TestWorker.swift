import ArgumentParser
import Foundation
import Logging

/// The worker processes of the multi-process tests: a cache or a lock used from another
/// process than the test's, which the test can kill, pause and count.
@main
struct TestWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede-test-worker",
        abstract: "Worker processes for Stampede's multi-process tests.",
        subcommands: [CacheWorker.self, MutexWorker.self, NearReaderWorker.self, ServiceWorker.self, SemaphoreWorker.self, OnceWorker.self]
    )

    /// As ArgumentParser's, with logging off first: a worker's standard output carries its
    /// protocol to the test.
    static func main() async {
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Prints a line and flushes it, so that the test reading the pipe sees it at once.
func say(_ line: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((line + "\n").utf8))
}

extension Duration {
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
