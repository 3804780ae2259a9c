import Foundation
import Synchronization

/// The worker processes of one storm run: started together, told when to go, read line by
/// line, and killed if the run is interrupted or fails.
final class WorkerFleet: Sendable {
    private struct Worker: Sendable {
        let process: Process
        let input: FileHandle
        let inbox: LineInbox<WorkerMessage>
    }

    private let workers: [Worker]

    /// Starts this executable once per argument list, with `environment` added to this
    /// process's.
    init(environment: [String: String] = [:], _ argumentLists: [[String]]) throws {
        let environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
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
                let inbox = LineInbox<WorkerMessage>(reading: output.fileHandleForReading) { WorkerMessage(line: $0) }
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

    /// Waits until every worker has said it is ready.
    func waitUntilReady(within limit: Duration) async throws {
        _ = try await nextFromEach(within: limit) { message -> Bool? in
            guard case .ready = message else { return nil }
            return true
        }
    }

    /// Waits for every worker's report.
    func results(within limit: Duration) async throws -> [WorkerReport] {
        try await nextFromEach(within: limit) { message in
            guard case .result(let report) = message else { return nil }
            return report
        }
    }

    func send(_ message: CoordinatorMessage) {
        let line = Data((message.line + "\n").utf8)
        for worker in workers { try? worker.input.write(contentsOf: line) }
    }

    /// Tells the workers to exit and waits for them; kills any still running after `limit`.
    func finish(within limit: Duration = .seconds(10)) async {
        send(.exit)
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
    private func nextFromEach<Value: Sendable>(
        within limit: Duration, _ accept: @escaping @Sendable (WorkerMessage) -> Value?
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
