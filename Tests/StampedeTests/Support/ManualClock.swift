@testable import Stampede
import Synchronization

/// A clock that moves only when a test says so: sleepers wake when ``advance(by:)`` takes
/// the time past their deadline. Tests of time-dependent logic run on it without sleeping.
final class ManualClock: MonotonicClock {
    private struct Sleeper {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: ContinuousClock.Instant
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
        /// Tasks waiting for a sleeper to arrive.
        var arrivals: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state: Mutex<State>

    init(startingAt start: ContinuousClock.Instant = .now) {
        state = Mutex(State(now: start))
    }

    var now: ContinuousClock.Instant { state.withLock { $0.now } }

    func sleep(until deadline: ContinuousClock.Instant) async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let (wakeNow, arrivals) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                    if deadline <= state.now { return (true, []) }
                    if Task.isCancelled { return (true, []) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    defer { state.arrivals = [:] }
                    return (false, Array(state.arrivals.values))
                }
                for arrival in arrivals { arrival.resume() }
                if wakeNow {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Sleeps until the task is cancelled (the clock never reaches this deadline), then
    /// throws `CancellationError`: work that only a lost lease or a timeout ends.
    func sleepUntilCancelled() async throws {
        try await sleep(until: now + .seconds(86_400 * 365 * 100))
    }

    /// Moves the time on by `duration` and wakes the sleepers whose deadline it passed.
    func advance(by duration: Duration) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now += duration
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for sleeper in due { sleeper.resume() }
    }

    /// How many tasks sleep on this clock now.
    var sleeping: Int { state.withLock { $0.sleepers.count } }

    /// Returns once at least `count` tasks sleep on this clock, or when the task is cancelled.
    func waitForSleepers(_ count: Int) async {
        while state.withLock({ $0.sleepers.count < count }) && !Task.isCancelled {
            let id = state.withLock { state -> Int in
                state.nextID += 1
                return state.nextID
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let enough = state.withLock { state -> Bool in
                        if state.sleepers.count >= count || Task.isCancelled { return true }
                        state.arrivals[id] = continuation
                        return false
                    }
                    if enough { continuation.resume() }
                }
            } onCancel: {
                state.withLock { $0.arrivals.removeValue(forKey: id) }?.resume()
            }
        }
    }
}
