import Synchronization

/// Loads that outlive the lookup that started them (background refreshes, loads past a
/// soft timeout), kept so that ``StampedeCache/shutdown()`` can let them finish.
final class BackgroundLoads: Sendable {
    private struct State {
        var running: [Int: Task<Void, Never>] = [:]
        var nextID = 0
    }
    private let state = Mutex(State())

    func start(_ work: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.running[id] = Task {
                await work()
                self.state.withLock { _ = $0.running.removeValue(forKey: id) }
            }
        }
    }

    /// Waits until every load running now has finished.
    func drain() async {
        let running = state.withLock { Array($0.running.values) }
        for task in running { await task.value }
    }
}
