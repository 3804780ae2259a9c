import Synchronization

/// The tasks parked on one thing (a flight's result, a signal, a lock's turn, idleness), in
/// arrival order, each resumed exactly once. Kept inside its owner's lock: the owner says,
/// under that lock, whether what a task waits for has happened already.
///
/// A waiter that needs no place in line before it suspends (a one-shot value, a signal)
/// takes its place and parks in one step, under its owner's lock:
/// ``wait(in:cancelled:park:leave:)``. One whose place must be kept from before it suspends
/// (a lock's first-come-first-served turn) takes a ticket first (``enqueue()``), then parks
/// under it (``park(_:ticket:ready:cancelled:)``): a value handed to a ticket whose task has
/// not parked yet is kept for it, so no wake-up is lost and arrival order holds.
///
/// ```swift
/// let ticket = state.withLock { $0.waiters.enqueue() }
/// let value = await Waiters.suspend(cancelled: nil) { continuation in
///     state.withLock { $0.waiters.park(continuation, ticket: ticket, ready: $0.result, cancelled: nil) }
/// } onCancel: {
///     state.withLock { $0.waiters.leave(ticket) }
/// }
/// ```
struct Waiters<Value: Sendable> {
    typealias Continuation = UnsafeContinuation<Value, Never>

    private enum Slot {
        /// Has a ticket; its task has not parked yet.
        case reserved
        case parked(Continuation)
        /// Handed a value before it parked: it takes the value when it parks.
        case resumed(Value)
    }

    private var slots: [Int: Slot] = [:]
    /// Tickets in arrival order; tickets that left are skipped when met.
    private var order: [Int] = []
    private var head = 0
    private var nextTicket = 0

    var isEmpty: Bool { slots.isEmpty }
    /// Tickets in line, parked or not.
    var count: Int { slots.count }

    /// A place in the line.
    mutating func enqueue() -> Int {
        let ticket = nextTicket
        nextTicket += 1
        slots[ticket] = .reserved
        order.append(ticket)
        return ticket
    }

    /// Parks `continuation` under `ticket`, unless it can go on at once: returns the value
    /// handed to the ticket before it parked, else `ready` (what it waits for has happened),
    /// else `cancelled` when the ticket left the line or its task is cancelled.
    mutating func park(_ continuation: Continuation, ticket: Int, ready: Value?, cancelled: Value) -> Value? {
        switch slots[ticket] {
        case .resumed(let value)?:
            remove(ticket)
            return value
        case .reserved?:
            if let ready {
                remove(ticket)
                return ready
            }
            if Task.isCancelled {
                remove(ticket)
                return cancelled
            }
            slots[ticket] = .parked(continuation)
            return nil
        case .parked?, nil:
            return ready ?? cancelled
        }
    }

    /// Takes a place in the line and parks `continuation` there at once, unless `ready`
    /// (what it waits for has happened) or its task is cancelled (`cancelled`): then the
    /// value to go on with, and no ticket. One step, for a waiter that needs no place in
    /// line before it suspends.
    mutating func enqueueAndPark(_ continuation: Continuation, ready: Value?, cancelled: Value) -> (ticket: Int?, now: Value?) {
        if let ready { return (nil, ready) }
        if Task.isCancelled { return (nil, cancelled) }
        let ticket = enqueue()
        slots[ticket] = .parked(continuation)
        return (ticket, nil)
    }

    /// Takes `ticket` out of the line (it timed out or was cancelled): its continuation if it
    /// had parked (resume it), else `nil`. A ticket already handed a value keeps it.
    mutating func leave(_ ticket: Int) -> Continuation? {
        switch slots[ticket] {
        case .parked(let continuation)?:
            remove(ticket)
            return continuation
        case .reserved?:
            remove(ticket)
            return nil
        case .resumed?, nil:
            return nil
        }
    }

    /// Hands `value` to `ticket`: its continuation when it parked (resume it with `value`),
    /// `nil` when it has not parked yet (it takes `value` when it does) or left.
    mutating func resume(_ ticket: Int, with value: Value) -> Continuation? {
        switch slots[ticket] {
        case .parked(let continuation)?:
            remove(ticket)
            return continuation
        case .reserved?:
            slots[ticket] = .resumed(value)
            return nil
        case .resumed?, nil:
            return nil
        }
    }

    /// Hands `value` to every ticket in line: the continuations to resume with it. Tickets
    /// not parked yet take it when they park.
    mutating func resumeAll(with value: Value) -> [Continuation] {
        var parked: [Continuation] = []
        for (ticket, slot) in slots {
            switch slot {
            case .parked(let continuation):
                parked.append(continuation)
                slots[ticket] = nil
            case .reserved:
                slots[ticket] = .resumed(value)
            case .resumed:
                break
            }
        }
        compact()
        return parked
    }

    /// Hands `value` to the longest-waiting ticket: its continuation when it parked (resume
    /// it with `value`), or `nil` when it has not parked yet (it takes `value` when it
    /// does). `found` is `false` when nobody waits.
    mutating func resumeFirst(with value: Value) -> (found: Bool, continuation: Continuation?) {
        while head < order.count {
            let ticket = order[head]
            head += 1
            switch slots[ticket] {
            case .parked(let continuation)?:
                remove(ticket)
                return (true, continuation)
            case .reserved?:
                slots[ticket] = .resumed(value)
                compact()
                return (true, nil)
            case .resumed?, nil:
                continue
            }
        }
        compact()
        return (false, nil)
    }

    private mutating func remove(_ ticket: Int) {
        slots[ticket] = nil
        compact()
    }

    /// Drops the tickets that left from the front of the line.
    private mutating func compact() {
        if slots.isEmpty {
            order = []
            head = 0
        } else if head > 64, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    /// Suspends the calling task in a line under `mutex`, in one step under the lock:
    /// `park` takes a place and parks there (``enqueueAndPark(_:ready:cancelled:)``), or
    /// gives the value to go on with at once. When the task is cancelled, `leave` takes its
    /// ticket out of the line (``leave(_:)``), and it goes on with `cancelled`.
    static func wait<State>(
        in mutex: borrowing Mutex<State>, cancelled: Value,
        park: (inout State, Continuation) -> (ticket: Int?, now: Value?),
        leave: @Sendable (inout State, Int) -> Continuation?
    ) async -> Value {
        // Set under the lock when the task parks; the cancellation handler reads it there.
        let ticket = Atomic<Int>(-1)
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                let now = mutex.withLock { state -> Value? in
                    let (parked, now) = park(&state, continuation)
                    if let parked { ticket.store(parked, ordering: .relaxed) }
                    return now
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            mutex.withLock { state -> Continuation? in
                let parked = ticket.load(ordering: .relaxed)
                return parked < 0 ? nil : leave(&state, parked)
            }?.resume(returning: cancelled)
        }
    }

    /// Suspends the calling task until it is resumed through its owner's ``Waiters``.
    ///
    /// - `register` runs once, with the task's continuation: under the owner's lock it
    ///   parks it (``park(_:ticket:ready:cancelled:)``).
    /// - `onCancel` runs when the task is cancelled: under the owner's lock it takes the
    ///   continuation out of the line (``leave(_:)``), if it is still there, to be resumed
    ///   with `cancelled`.
    static func suspend(
        cancelled: Value,
        register: (Continuation) -> Value?,
        onCancel: @Sendable () -> Continuation?
    ) async -> Value {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                if let ready = register(continuation) { continuation.resume(returning: ready) }
            }
        } onCancel: {
            onCancel()?.resume(returning: cancelled)
        }
    }
}
