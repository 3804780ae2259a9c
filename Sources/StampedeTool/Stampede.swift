import ArgumentParser
import Foundation
import Logging

@main
struct Stampede: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede",
        abstract: "Stampede's command-line tool: storms, benchmarks and reliability checks against your Redis, or a throwaway one.",
        subcommands: [
            Storm.self, Bench.self, Reliability.self,
            StormWorker.self, ReliabilityWorker.self,
        ],
        defaultSubcommand: Storm.self
    )

    /// As ArgumentParser's, except that a failure is one line on standard error: what went
    /// wrong, without the usage text (`--help` has that).
    static func main() async {
        // The caches and locks the tool runs log through the global logging system; their
        // warnings (Redis unavailable during an outage check, say) are what the tool measures,
        // not news to print, and the workers' standard output carries their protocol.
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            // The interrupt handler is undoing the storm and will exit; a failure its killing
            // of the workers caused is not news.
            while Interruption.shared.isInterrupted { sleep(1) }
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            let message = Self.message(for: error).split(whereSeparator: \.isNewline).joined(separator: " ")
            if !message.isEmpty {
                try? FileHandle.standardError.write(contentsOf: Data("stampede: \(message)\n".utf8))
            }
            exit(withError: ExitCode(code.rawValue))
        }
    }
}
