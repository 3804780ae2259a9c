import Foundation
import Synchronization

/// The worker processes of one run (a storm's, a reliability check's): started together,
/// told when to go, read line by line as `Message`s, and killed if the run is interrupted or
/// fails.
final class WorkerFleet<Message: Sendable>: Sendable {
    private struct Worker: Sendable {
        let process: Process
        let input: FileHandle
        let inbox: LineInbox<Message>
    }

    private let workers: [Worker]

    /// Starts this executable once per argument list, with `environment` added to this
    /// process's; `parse` reads a worker's line as a message (`nil`: a diagnostic, kept for
    /// the error report).
    init(environment: [String: String] = [:], _ argumentLists: [[String]], parse: @escaping @Sendable (String) -> Message?) throws {
        let environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        #if os(Linux)
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        #else
        guard let executable = Bundle.main.executableURL else { throw ToolError("cannot find this executable to start its workers") }
        #endif
        var workers: [Worker] = []
        do {
            for arguments in argumentLists {
                let process = Process()
                process.executableURL = executable
                process.arguments = arguments
                process.environment = environment
                let output = Pipe(), input = Pipe()
                // The parent's ends must not leak into the next worker, or a worker's output
                // would never reach end-of-file while a sibling lives.
                for handle in [output.fileHandleForReading, input.fileHandleForWriting] {
                    _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
                }
                process.standardOutput = output
                process.standardError = output
                process.standardInput = input
                try process.run()
                Interruption.shared.register(process.processIdentifier)
                try? output.fileHandleForWriting.close()
                try? input.fileHandleForReading.close()
                let inbox = LineInbox<Message>(reading: output.fileHandleForReading, parse: parse)
                workers.append(Worker(process: process, input: input.fileHandleForWriting, inbox: inbox))
            }
        } catch {
            for worker in workers {
                kill(worker.process.processIdentifier, SIGKILL)
                worker.process.waitUntilExit()
                Interruption.shared.unregister(worker.process.processIdentifier)
            }
            throw ToolError("could not start a worker process: \(error)")
        }
        self.workers = workers
    }

    /// Writes `line` to every worker's standard input.
    func send(line: String) {
        let data = Data((line + "\n").utf8)
        for worker in workers { try? worker.input.write(contentsOf: data) }
    }

    /// Tells the workers to exit (the line `exit`, in every worker protocol) and waits for
    /// them; kills any still running after `limit`.
    func finish(within limit: Duration = .seconds(10)) async {
        send(line: "exit")
        let deadline = ContinuousClock.now + limit
        while workers.contains(where: { $0.process.isRunning }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        stop()
    }

    /// Kills every worker still running and waits until they are gone, so that none writes
    /// to Redis after the run's keys are deleted.
    func stop() {
        for worker in workers {
            if worker.process.isRunning {
                kill(worker.process.processIdentifier, SIGKILL)
                worker.process.waitUntilExit()
            }
            Interruption.shared.unregister(worker.process.processIdentifier)
            try? worker.input.close()
        }
    }

    /// The next message of each worker, as `accept` reads it. The workers are watched all
    /// at once: one that exits or says something else first, or a deadline passed, fails the
    /// run at once with what it printed.
    func nextFromEach<Value: Sendable>(
        within limit: Duration, _ accept: @escaping @Sendable (Message) -> Value?
    ) async throws -> [Value] {
        let deadline = ContinuousClock.now + limit
        var values = [Value?](repeating: nil, count: workers.count)
        var waiting = workers.count
        while waiting > 0 {
            for (index, worker) in workers.enumerated() where values[index] == nil {
                switch worker.inbox.take() {
                case .message(let message):
                    guard let value = accept(message) else { throw failure(of: worker, index: index, "sent \(message) out of turn") }
                    values[index] = value
                    waiting -= 1
                case .closed:
                    throw failure(of: worker, index: index, "exited early")
                case .none:
                    break
                }
            }
            guard waiting > 0 else { break }
            if ContinuousClock.now >= deadline {
                let late = values.firstIndex { $0 == nil }!
                throw failure(of: workers[late], index: late, "did not answer within \(limit)")
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return values.map { $0! }
    }

    private func failure(of worker: Worker, index: Int, _ what: String) -> ToolError {
        if worker.process.isRunning { kill(worker.process.processIdentifier, SIGKILL) }
        worker.process.waitUntilExit()
        let said = worker.inbox.lastOtherLines(3).joined(separator: " / ")
        return ToolError("worker \(index + 1) \(what) (status \(worker.process.terminationStatus))\(said.isEmpty ? "" : ": \(said)")")
    }
}

extension WorkerFleet where Message: WorkerReply {
    /// Waits until every worker has said it is ready.
    func waitUntilReady(within limit: Duration) async throws {
        _ = try await nextFromEach(within: limit) { $0.isReady ? true : nil }
    }

    /// Waits for every worker's report.
    func results(within limit: Duration) async throws -> [Message.Report] {
        try await nextFromEach(within: limit) { $0.report }
    }
}

/// A storm's fleet, speaking ``WorkerMessage`` and ``CoordinatorMessage``.
extension WorkerFleet where Message == WorkerMessage<WorkerReport> {
    convenience init(environment: [String: String] = [:], _ argumentLists: [[String]]) throws {
        try self.init(environment: environment, argumentLists) { WorkerMessage(line: $0) }
    }

    func send(_ message: CoordinatorMessage) { send(line: message.line) }
}
