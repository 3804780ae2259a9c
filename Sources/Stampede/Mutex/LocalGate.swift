import Synchronization

/// In-process, first-come-first-served admission to one lock name.
///
/// Only the task at the front of a process's queue contends for the lock in Redis; the rest
/// wait here and are handed the turn in order. A release then wakes one task per process
/// instead of every waiter, which keeps hand-offs fast with many waiters.
final class LocalGate: Sendable {
    private enum Waiter {
        /// Registered; its task has not parked yet.
        case pending
        case parked(CheckedContinuation<Bool, Never>)
        /// Handed the turn before it parked.
        case granted
    }

    private struct State {
        /// Whether some task of this process has the turn.
        var taken = false
        var waiters: [Int: Waiter] = [:]
        /// Waiter ids in arrival order; ids that gave up are skipped.
        var order: [Int] = []
        var nextID = 0
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

    /// Waits for the turn until `deadline`; `false` if it did not come by then or the task
    /// was cancelled.
    func enter(until deadline: ContinuousClock.Instant) async -> Bool {
        // Registered before any suspension, so a turn handed over meanwhile is not lost.
        let id: Int? = state.withLock { state in
            if !state.taken {
                state.taken = true
                return nil
            }
            let id = state.nextID
            state.nextID += 1
            state.waiters[id] = .pending
            state.order.append(id)
            return id
        }
        guard let id else { return true }
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask { await self.park(id) }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: ContinuousClock())
                self.giveUp(id)
                return nil
            }
            var granted = false
            for await result in group {
                guard let result else { continue }
                granted = result
                group.cancelAll()
            }
            return granted
        }
    }

    private func park(_ id: Int) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let result: Bool? = state.withLock { state in
                    switch state.waiters[id] {
                    case .pending:
                        state.waiters[id] = .parked(continuation)
                        return nil
                    case .granted:
                        state.waiters[id] = nil
                        return true
                    case .parked, nil:
                        return false  // gave up already
                    }
                }
                if let result { continuation.resume(returning: result) }
            }
        } onCancel: {
            giveUp(id)
        }
    }

    /// Withdraws a waiter that timed out or was cancelled; one that was handed the turn keeps it.
    private func giveUp(_ id: Int) {
        let parked: CheckedContinuation<Bool, Never>? = state.withLock { state in
            switch state.waiters[id] {
            case .pending:
                state.waiters[id] = nil
                return nil
            case .parked(let continuation):
                state.waiters[id] = nil
                return continuation
            case .granted, nil:
                return nil
            }
        }
        parked?.resume(returning: false)
    }

    /// Passes the turn to the longest-waiting task, or frees it.
    func leave() {
        let next: CheckedContinuation<Bool, Never>? = state.withLock { state in
            while !state.order.isEmpty {
                let id = state.order.removeFirst()
                switch state.waiters[id] {
                case .pending:
                    state.waiters[id] = .granted
                    return nil
                case .parked(let continuation):
                    state.waiters[id] = nil
                    return continuation
                case .granted, nil:
                    continue
                }
            }
            state.taken = false
            return nil
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
