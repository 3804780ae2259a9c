@testable import Stampede
import Synchronization
import Testing

@Suite("Local gate", .timeLimit(.minutes(2)))
struct LocalGateTests {
    @Test func admitsOneAtATimeFirstComeFirstServed() async throws {
        let gate = LocalGate()
        #expect(gate.tryEnter())
        #expect(!gate.tryEnter())
        let order = Recorder()
        // Each waiter sleeps on the clock until its deadline once it is in line.
        let clock = ManualClock()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<5 {
                group.addTask {
                    #expect(await gate.enter(until: clock.now + .seconds(30), clock: clock))
                    order.append(index)
                    gate.leave()
                }
                // Each waiter queues before the next one arrives.
                await clock.waitForSleepers(index + 1)
            }
            gate.leave()
            try await group.waitForAll()
        }
        #expect(order.values == [0, 1, 2, 3, 4])
        #expect(gate.isIdle)
    }

    @Test func aWaiterGivesUpAtItsDeadlineAndIsSkipped() async {
        let gate = LocalGate()
        #expect(gate.tryEnter())
        let clock = ManualClock()
        let waiter = Task { await gate.enter(until: clock.now + .milliseconds(50), clock: clock) }
        await clock.waitForSleepers(1)
        clock.advance(by: .milliseconds(49))
        #expect(clock.sleeping == 1, "still waiting before its deadline")
        clock.advance(by: .milliseconds(1))
        #expect(await waiter.value == false)
        gate.leave()
        // The one that gave up did not take the turn with it.
        #expect(gate.tryEnter())
        gate.leave()
        #expect(gate.isIdle)
    }

    @Test func aCancelledWaiterGivesUp() async {
        let gate = LocalGate()
        #expect(gate.tryEnter())
        let clock = ManualClock()
        let waiter = Task { await gate.enter(until: clock.now + .seconds(30), clock: clock) }
        await clock.waitForSleepers(1)  // in line
        waiter.cancel()
        #expect(await waiter.value == false)
        gate.leave()
        #expect(gate.isIdle)
    }

    @Test func gatesAreDroppedWhenNoLongerUsed() {
        let gates = LocalGates()
        let first = gates.checkOut("a")
        let second = gates.checkOut("a")
        #expect(first === second)
        gates.checkIn("a")
        #expect(gates.count == 1)
        gates.checkIn("a")
        #expect(gates.count == 0)
    }
}

/// Values appended from any task, in order.
final class Recorder: Sendable {
    private let state = Mutex<[Int]>([])
    func append(_ value: Int) { state.withLock { $0.append(value) } }
    var values: [Int] { state.withLock { $0 } }
}
