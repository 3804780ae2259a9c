import Synchronization

/// Work that outlives the call that started it (a cache's background refreshes and loads
/// past a soft timeout, a mutex's clean-up of a lock whose reply was lost), run by one
/// owner so that it can be waited for before the process exits.
///
/// ``run()`` runs the work as child tasks until ``finish()``; a service calls it from its
/// own `run()`. Started work that finds nobody running it starts a runner of its own.
final class BackgroundWork: Sendable {
    typealias Work = @Sendable () async -> Void

    private struct State {
        /// Work started and not finished yet.
        var pending = 0
        var hasRunner = false
        var drained = Waiters<Bool>()
    }

    private let state = Mutex(State())
    private let queue: AsyncStream<Work>
    private let submit: AsyncStream<Work>.Continuation

    init() {
        (queue, submit) = AsyncStream.makeStream(of: Work.self)
    }

    /// Starts `work` apart from the caller.
    func start(_ work: @escaping Work) {
        let startRunner = state.withLock { state -> Bool in
            state.pending += 1
            defer { state.hasRunner = true }
            return !state.hasRunner
        }
        submit.yield(work)
        if startRunner { Task { await self.runQueue() } }
    }

    /// Runs started work until ``finish()``, then waits for what is still running.
    /// Call it at most once, before any work starts; later calls return at once.
    func run() async {
        let claimed = state.withLock { state -> Bool in
            defer { state.hasRunner = true }
            return !state.hasRunner
        }
        guard claimed else { return }
        await runQueue()
    }

    private func runQueue() async {
        await withDiscardingTaskGroup { group in
            for await work in queue {
                group.addTask {
                    await work()
                    self.finished()
                }
            }
        }
    }

    /// Stops taking work: ``run()`` returns once what was started has finished.
    func finish() {
        submit.finish()
    }

    private func finished() {
        let parked = state.withLock { state -> [Waiters<Bool>.Continuation] in
            state.pending -= 1
            return state.pending == 0 ? state.drained.removeAll() : []
        }
        for waiter in parked { waiter.resume(returning: true) }
    }

    /// Waits until every piece of work started so far has finished, or `deadline` passes on
    /// `clock`. Returns whether it all finished.
    @discardableResult
    func drain(until deadline: ContinuousClock.Instant? = nil, clock: any MonotonicClock = SystemClock()) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.waitUntilIdle() }
            if let deadline {
                group.addTask {
                    try? await clock.sleep(until: deadline)
                    return false
                }
            }
            let drained = await group.next() ?? false
            group.cancelAll()
            return drained
        }
    }

    /// `true` once nothing is pending; `false` when cancelled first.
    private func waitUntilIdle() async -> Bool {
        let ticket = state.withLock { $0.drained.enqueue() }
        return await Waiters.suspend(cancelled: false) { continuation in
            state.withLock { state in
                guard state.pending > 0 else {
                    _ = state.drained.leave(ticket)
                    return true
                }
                return state.drained.park(continuation, ticket: ticket, cancelled: false)
            }
        } onCancel: {
            state.withLock { $0.drained.leave(ticket) }
        }
    }
}
