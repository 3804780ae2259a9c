import Synchronization

/// A wake-up call that any number of tasks can wait for, with a deadline.
///
/// Each ``notify()`` starts a new generation; a waiter passes the generation it saw before
/// checking its condition, so a notification between the check and the wait is not lost.
final class AsyncSignal: Sendable {
    private struct State {
        var generation = 0
        var waiters = Waiters<Void>()
    }
    private let state = Mutex(State())

    var generation: Int { state.withLock { $0.generation } }

    func notify() {
        let parked = state.withLock { state in
            state.generation += 1
            return state.waiters.resumeAll(with: ())
        }
        for waiter in parked { waiter.resume() }
    }

    /// Returns when a generation after `seen` starts, `deadline` passes on `clock`, or the
    /// task is cancelled.
    func wait(after seen: Int, until deadline: ContinuousClock.Instant, clock: any MonotonicClock) async {
        await clock.cancelling({ await self.wait(after: seen) }, at: deadline)
    }

    /// Returns when a generation after `seen` starts, or the task is cancelled.
    func wait(after seen: Int) async {
        await Waiters.wait(
            in: state, cancelled: (),
            park: { state, continuation in
                state.waiters.enqueueAndPark(continuation, ready: state.generation > seen ? () : nil, cancelled: ())
            },
            leave: { state, ticket in state.waiters.leave(ticket) })
    }
}
