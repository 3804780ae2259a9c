import Synchronization

/// A value set once, that any number of tasks wait for: a single flight's result, a load's
/// outcome that callers may stop waiting for while it goes on.
final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters = Waiters<Value?>()
    }

    private let state = Mutex(State())

    init() {}

    /// Sets the value and wakes every waiter; only the first call counts.
    func finish(_ value: Value) {
        let parked = state.withLock { state -> [Waiters<Value?>.Continuation] in
            guard state.value == nil else { return [] }
            state.value = value
            return state.waiters.resumeAll(with: value)
        }
        for waiter in parked { waiter.resume(returning: value) }
    }

    /// The value, or `nil` when the task is cancelled before it is set.
    func wait() async -> Value? {
        await Waiters.wait(
            in: state, cancelled: nil,
            park: { state, continuation in
                state.waiters.enqueueAndPark(continuation, ready: state.value.map { .some($0) }, cancelled: nil)
            },
            leave: { state, ticket in state.waiters.leave(ticket) })
    }

    /// The value, or `nil` when `deadline` passes on `clock` (or the task is cancelled)
    /// before it is set.
    func wait(until deadline: ContinuousClock.Instant, clock: any MonotonicClock) async -> Value? {
        await clock.cancelling({ await self.wait() }, at: deadline)
    }

    /// How many tasks wait for the value.
    var waiting: Int { state.withLock { $0.waiters.count } }
}
