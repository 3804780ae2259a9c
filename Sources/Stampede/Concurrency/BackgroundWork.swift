import Synchronization

/// Work that outlives the call that started it (a cache's background refreshes and loads
/// past a soft timeout, a mutex's clean-up of a lock whose reply was lost), owned here so
/// that it can be waited for before the process exits.
///
/// Work runs as child tasks of a runner task, started when work arrives; the runner takes
/// what is queued, then waits for its children and ends (work that arrives after it took
/// the queue starts another). Each piece runs at the priority of the task that started it; the runner
/// is detached, so work does not inherit the task-local values of whichever caller
/// happened to start the runner (a lock that caller held, its trace).
final class BackgroundWork: Sendable {
    typealias Work = @Sendable () async -> Void

    private struct State {
        /// Started, not yet handed to the runner, in order.
        var queue: [(id: Int, priority: TaskPriority, work: Work)] = []
        /// Started and not finished.
        var unfinished: Set<Int> = []
        var nextID = 0
        var hasRunner = false
        /// Callers of ``drain(until:clock:)``, each waiting for the work started before it
        /// called: for each ticket, the first id it does not wait for.
        var drainers = Waiters<Bool>()
        var drainedBelow: [Int: Int] = [:]
    }

    private let state = Mutex(State())

    /// Starts `work` apart from the caller.
    func start(_ work: @escaping Work) {
        let priority = Task.currentPriority
        let startRunner = state.withLock { state -> Bool in
            let id = state.nextID
            state.nextID += 1
            state.queue.append((id, priority, work))
            state.unfinished.insert(id)
            defer { state.hasRunner = true }
            return !state.hasRunner
        }
        if startRunner { Task.detached { await self.runQueue() } }
    }

    private func runQueue() async {
        await withDiscardingTaskGroup { group in
            while let (id, priority, work) = nextWork() {
                group.addTask(priority: priority) {
                    await work()
                    self.finished(id)
                }
            }
        }
    }

    /// The next work to run; `nil` when there is none, and then the runner ends.
    private func nextWork() -> (Int, TaskPriority, Work)? {
        state.withLock { state in
            guard !state.queue.isEmpty else {
                state.hasRunner = false
                return nil
            }
            return state.queue.removeFirst()
        }
    }

    private func finished(_ id: Int) {
        let drained = state.withLock { state -> [Waiters<Bool>.Continuation] in
            state.unfinished.remove(id)
            let oldest = state.unfinished.min() ?? Int.max
            var drained: [Waiters<Bool>.Continuation] = []
            for (ticket, bound) in state.drainedBelow where bound <= oldest {
                state.drainedBelow[ticket] = nil
                if let continuation = state.drainers.resume(ticket, with: true) { drained.append(continuation) }
            }
            return drained
        }
        for continuation in drained { continuation.resume(returning: true) }
    }

    /// Waits until the work started before this call has finished, or until `deadline`
    /// passes on `clock`. Returns whether it all finished.
    @discardableResult
    func drain(until deadline: ContinuousClock.Instant? = nil, clock: any MonotonicClock = SystemClock()) async -> Bool {
        // In line before any suspension: the work to wait for is the work started so far.
        let ticket = state.withLock { state -> Int in
            let ticket = state.drainers.enqueue()
            state.drainedBelow[ticket] = state.nextID
            return ticket
        }
        guard let deadline else { return await waitForDrain(ticket) }
        return await clock.cancelling({ await self.waitForDrain(ticket) }, at: deadline)
    }

    /// `true` once the work `ticket` waits for has finished; `false` when cancelled first.
    private func waitForDrain(_ ticket: Int) async -> Bool {
        let drained = await Waiters.suspend(cancelled: false) { continuation in
            state.withLock { state in
                let done = (state.unfinished.min() ?? Int.max) >= (state.drainedBelow[ticket] ?? 0)
                return state.drainers.park(continuation, ticket: ticket, ready: done ? true : nil, cancelled: false)
            }
        } onCancel: {
            state.withLock { $0.drainers.leave(ticket) }
        }
        state.withLock { _ = $0.drainedBelow.removeValue(forKey: ticket) }
        return drained
    }
}
