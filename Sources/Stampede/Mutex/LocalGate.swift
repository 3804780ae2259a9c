import Synchronization

/// In-process, first-come-first-served admission to one lock name.
///
/// Only the task at the front of a process's queue contends for the lock in Redis; the rest
/// wait here and are handed the turn in order. A release then wakes one task per process
/// instead of every waiter, which keeps hand-offs fast with many waiters.
final class LocalGate: Sendable {
    private struct State {
        /// Whether some task of this process has the turn.
        var taken = false
        /// Handed `true` with the turn.
        var waiters = Waiters<Bool>()
    }

    private let state = Mutex(State())

    /// Takes the turn if no task of this process has it.
    func tryEnter() -> Bool {
        state.withLock { state in
            if state.taken { return false }
            state.taken = true
            return true
        }
    }

    /// Waits for the turn until `deadline` on `clock`; `false` if it did not come by then or
    /// the task was cancelled.
    func enter(until deadline: ContinuousClock.Instant, clock: any MonotonicClock) async -> Bool {
        // In line before any suspension, so a turn handed over meanwhile is kept for it.
        let ticket: Int? = state.withLock { state in
            if !state.taken {
                state.taken = true
                return nil
            }
            return state.waiters.enqueue()
        }
        guard let ticket else { return true }
        // Cancelled at the deadline, a waiter that was handed the turn meanwhile keeps it.
        return await clock.cancelling({ await self.park(ticket) }, at: deadline)
    }

    private func park(_ ticket: Int) async -> Bool {
        await Waiters.suspend(cancelled: false) { continuation in
            state.withLock { $0.waiters.park(continuation, ticket: ticket, ready: nil, cancelled: false) }
        } onCancel: {
            // Timed out or cancelled; a waiter that was handed the turn keeps it.
            state.withLock { $0.waiters.leave(ticket) }
        }
    }

    /// Passes the turn to the longest-waiting task, or frees it.
    func leave() {
        let next = state.withLock { state -> Waiters<Bool>.Continuation? in
            let (found, continuation) = state.waiters.resumeFirst(with: true)
            if !found { state.taken = false }
            return continuation
        }
        next?.resume(returning: true)
    }

    /// Whether nobody has or waits for the turn (the gate can be dropped).
    var isIdle: Bool { state.withLock { !$0.taken && $0.waiters.isEmpty } }
}

/// The gates of the lock names in use in this process.
final class LocalGates: Sendable {
    private let gates = Mutex<[ExactKey: (gate: LocalGate, users: Int)]>([:])

    /// The gate for `key`, kept until the matching ``checkIn(_:)``.
    func checkOut(_ key: String) -> LocalGate {
        let key = ExactKey(key)
        return gates.withLock { gates in
            if let entry = gates[key] {
                gates[key] = (entry.gate, entry.users + 1)
                return entry.gate
            }
            let gate = LocalGate()
            gates[key] = (gate, 1)
            return gate
        }
    }

    func checkIn(_ key: String) {
        let key = ExactKey(key)
        gates.withLock { gates in
            guard let entry = gates[key] else { return }
            if entry.users <= 1 {
                gates[key] = nil
            } else {
                gates[key] = (entry.gate, entry.users - 1)
            }
        }
    }

    var count: Int { gates.withLock { $0.count } }
}
