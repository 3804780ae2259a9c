/// The tasks parked on one thing (a flight's result, a signal, a lock's turn), in arrival
/// order, each resumed exactly once. Kept inside its owner's lock: the owner decides, under
/// that lock, whether a task must park at all.
///
/// A waiter takes a ticket first (``enqueue()``), then parks under it (``park(_:ticket:)``).
/// The two may be apart: a lock's turn handed to a ticket whose task has not parked yet is
/// kept for it (``resumeFirst(with:)``), so arrival order holds.
///
/// ```swift
/// let value = await Waiters.suspend(cancelled: nil) { continuation in
///     state.withLock { state in
///         if let ready = state.result { return ready }
///         return state.waiters.park(continuation, ticket: state.waiters.enqueue()) ? nil : .some(nil)
///     }
/// } onCancel: { ... }
/// ```
struct Waiters<Value: Sendable> {
    typealias Continuation = UnsafeContinuation<Value, Never>

    private enum Slot {
        /// Has a ticket; its task has not parked yet.
        case reserved
        case parked(Continuation)
        /// Resumed before it parked: it takes this value when it parks.
        case resumed(Value)
    }

    private var slots: [Int: Slot] = [:]
    /// Tickets in arrival order; tickets that left are skipped when met.
    private var order: [Int] = []
    private var head = 0
    private var nextTicket = 0

    var isEmpty: Bool { slots.isEmpty }
    var count: Int { slots.count }

    /// A place in the line.
    mutating func enqueue() -> Int {
        let ticket = nextTicket
        nextTicket += 1
        slots[ticket] = .reserved
        order.append(ticket)
        return ticket
    }

    /// Parks `continuation` under `ticket`. Returns the value to resume it with at once
    /// instead: the one handed to the ticket before it parked, or `cancelled` when the
    /// ticket left (timed out) or its task is cancelled.
    mutating func park(_ continuation: Continuation, ticket: Int, cancelled: Value) -> Value? {
        switch slots[ticket] {
        case .reserved?:
            if Task.isCancelled {
                slots[ticket] = nil
                return cancelled
            }
            slots[ticket] = .parked(continuation)
            return nil
        case .resumed(let value)?:
            slots[ticket] = nil
            return value
        case .parked?, nil:
            return cancelled
        }
    }

    /// Takes `ticket` out of the line: its continuation if it had parked (resume it), else
    /// `nil`. A ticket already handed a value keeps it (see ``park(_:ticket:cancelled:)``).
    mutating func leave(_ ticket: Int) -> Continuation? {
        switch slots[ticket] {
        case .parked(let continuation)?:
            slots[ticket] = nil
            return continuation
        case .reserved?:
            slots[ticket] = nil
            return nil
        case .resumed?, nil:
            return nil
        }
    }

    /// Whether `ticket` was handed a value it has not parked to take yet.
    func wasResumed(_ ticket: Int) -> Bool {
        if case .resumed? = slots[ticket] { return true }
        return false
    }

    /// Empties the line: the continuations to resume. Tickets not parked yet are dropped
    /// (their owner's state tells them what happened when they park).
    mutating func removeAll() -> [Continuation] {
        var parked: [Continuation] = []
        for case .parked(let continuation) in slots.values { parked.append(continuation) }
        slots = [:]
        order = []
        head = 0
        return parked
    }

    /// Hands `value` to the longest-waiting ticket: its continuation when it parked (resume
    /// it with `value`), or `nil` when it has not parked yet (it takes `value` when it
    /// does). `found` is `false` when the line is empty.
    mutating func resumeFirst(with value: Value) -> (found: Bool, continuation: Continuation?) {
        while head < order.count {
            let ticket = order[head]
            head += 1
            if head > 64, head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
            switch slots[ticket] {
            case .parked(let continuation)?:
                slots[ticket] = nil
                return (true, continuation)
            case .reserved?:
                slots[ticket] = .resumed(value)
                return (true, nil)
            case .resumed?, nil:
                continue
            }
        }
        return (false, nil)
    }

    /// Suspends the calling task until it is resumed through its owner's ``Waiters``.
    ///
    /// - `register` runs once, with the task's continuation: under the owner's lock it either
    ///   parks it (returns `nil`) or returns the value to go on with at once.
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
