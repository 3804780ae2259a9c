import Foundation

/// A storm as a self-contained SVG: per scenario, each strategy's latency distribution (a
/// percentile curve on log axes) beside a bar per strategy of what the scenario is about:
/// origin calls per key for miss and stale, Redis commands per request for hit storms,
/// mutual-exclusion violations for the lock.
enum StormChart {
    static let colors: [Strategy: String] = [.naive: "#d62728", .local: "#ff7f0e", .stampede: "#2a9d3f"]
    /// Curves that coincide stay visible: local's is dashed over naive's.
    private static let dashes: [Strategy: String] = [.naive: "", .local: " stroke-dasharray=\"8,5\"", .stampede: ""]
    private static let width = 980.0
    private static let rowHeight = 300.0
    private static let top = 70.0
    /// Quantiles plotted, up to p99.9; the maximum is the curve's last point.
    private static let quantiles: [Double] = (0..<20).map { Double($0) * 0.05 } + [0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999]

    /// - Parameters:
    ///   - title: the first line (the storm's parameters).
    ///   - subtitle: the second line (where it ran).
    static func svg(title: String, subtitle: String, parameters: StormParameters, reports: [RunReport]) -> String {
        let scenarios = Scenario.allCases.filter { scenario in reports.contains { $0.scenario == scenario } }
        let height = top + rowHeight * Double(scenarios.count) + 10
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="20" y="24" font-size="16" font-weight="bold">\(escape(title))</text>
            <text x="20" y="42" fill="#555">\(escape(subtitle))</text>

            """
        let strategies = Strategy.allCases.filter { strategy in reports.contains { $0.strategy == strategy } }
        var legendX = width - 330
        for strategy in strategies {
            svg += "<line x1=\"\(legendX)\" y1=\"56\" x2=\"\(legendX + 24)\" y2=\"56\" stroke=\"\(colors[strategy]!)\" stroke-width=\"3\"\(dashes[strategy]!)/>"
            svg += "<text x=\"\(legendX + 30)\" y=\"60\">\(strategy.rawValue)</text>\n"
            legendX += 105
        }
        for (row, scenario) in scenarios.enumerated() {
            let runs = reports.filter { $0.scenario == scenario }
            let y = top + rowHeight * Double(row)
            svg += "<text x=\"20\" y=\"\(y + 24)\" font-size=\"14\" font-weight=\"bold\">\(escape(StormTable.title(scenario: scenario, parameters: parameters)))</text>\n"
            svg += latencyPanel(runs, strategies: strategies, x: 70, y: y + 40, width: 560, height: 210, lock: scenario == .lock)
            svg += barPanel(runs, scenario: scenario, strategies: strategies, x: 700, y: y + 40, width: 250, height: 210)
        }
        return svg + "</svg>\n"
    }

    /// Latency (log scale) against percentile ("nines" scale: p50, p90, p99, p99.9, max).
    private static func latencyPanel(_ runs: [RunReport], strategies: [Strategy], x: Double, y: Double, width: Double, height: Double, lock: Bool) -> String {
        var curves: [(Strategy, [(Double, Double)])] = []
        for strategy in strategies {
            var histogram = LatencyHistogram()
            for run in runs where run.strategy == strategy { histogram.merge(run.latency) }
            guard histogram.count > 0 else { continue }
            var points = quantiles.map { (nines($0), max(0.001, histogram.milliseconds(atQuantile: $0))) }
            points.append((3.3, max(0.001, histogram.milliseconds(atQuantile: 1))))
            curves.append((strategy, points))
        }
        let values = curves.flatMap { $0.1.map(\.1) }
        let ticks = logTicks(from: values.min() ?? 0.1, to: values.max() ?? 1)
        let low = log10(ticks.first!), high = log10(ticks.last!)
        func px(_ n: Double) -> Double { x + n / 3.3 * width }
        func py(_ ms: Double) -> Double { y + height - (log10(ms) - low) / (high - low) * height }

        var svg = "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#999\"/>\n"
        for tick in ticks {
            let ty = py(tick)
            svg += "<line x1=\"\(x)\" y1=\"\(ty)\" x2=\"\(x + width)\" y2=\"\(ty)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(x - 6)\" y=\"\(ty + 4)\" text-anchor=\"end\">\(tickLabel(tick))</text>\n"
        }
        for (label, n) in [("p0", 0.0), ("p50", nines(0.5)), ("p90", 1.0), ("p99", 2.0), ("p99.9", 3.0), ("max", 3.3)] {
            svg += "<line x1=\"\(px(n))\" y1=\"\(y)\" x2=\"\(px(n))\" y2=\"\(y + height)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(px(n))\" y=\"\(y + height + 16)\" text-anchor=\"middle\">\(label)</text>\n"
        }
        svg += "<text x=\"\(x - 50)\" y=\"\(y + height / 2)\" transform=\"rotate(-90 \(x - 50) \(y + height / 2))\" text-anchor=\"middle\">\(lock ? "wait for the lock, ms" : "latency, ms")</text>\n"
        svg += "<text x=\"\(x + width / 2)\" y=\"\(y + height + 32)\" text-anchor=\"middle\">callers, by percentile</text>\n"
        for (strategy, points) in curves {
            let path = points.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colors[strategy]!)\" stroke-width=\"2\"\(dashes[strategy]!)/>\n"
        }
        return svg
    }

    private static func barPanel(_ runs: [RunReport], scenario: Scenario, strategies: [Strategy], x: Double, y: Double, width: Double, height: Double) -> String {
        let (label, value): (String, (RunReport) -> Double) = switch scenario {
        case .miss, .stale: ("origin calls per key", { $0.originCallsPerKey })
        case .hit, .hotHit: ("Redis commands per request", { $0.requests == 0 ? 0 : Double($0.redisCommands) / Double($0.requests) })
        case .lock: ("mutual-exclusion violations", { Double($0.violations ?? 0) })
        }
        let bars = strategies.compactMap { strategy -> (Strategy, Double)? in
            let values = runs.filter { $0.strategy == strategy }.map(value)
            return values.isEmpty ? nil : (strategy, median(values))
        }
        let top = max(1, (bars.map(\.1).max() ?? 1) * 1.15)
        let slot = width / Double(max(1, bars.count))
        var svg = "<line x1=\"\(x)\" y1=\"\(y + height)\" x2=\"\(x + width)\" y2=\"\(y + height)\" stroke=\"#999\"/>\n"
        svg += "<text x=\"\(x + width / 2)\" y=\"\(y - 4)\" text-anchor=\"middle\" font-weight=\"bold\">\(label)</text>\n"
        for (index, (strategy, amount)) in bars.enumerated() {
            let barHeight = amount / top * height
            let bx = x + slot * Double(index) + slot * 0.2
            svg += "<rect x=\"\(bx)\" y=\"\(y + height - barHeight)\" width=\"\(slot * 0.6)\" height=\"\(barHeight)\" fill=\"\(colors[strategy]!)\"/>"
            let shown = amount == amount.rounded() ? String(Int(amount)) : String(format: "%.2f", amount)
            svg += "<text x=\"\(bx + slot * 0.3)\" y=\"\(y + height - barHeight - 4)\" text-anchor=\"middle\">\(shown)</text>"
            svg += "<text x=\"\(bx + slot * 0.3)\" y=\"\(y + height + 16)\" text-anchor=\"middle\">\(strategy.rawValue)</text>\n"
        }
        return svg
    }

    /// Axis ticks at round multiples of powers of ten, the first at or below `low`, the last
    /// at or above `high`: as fine as the range needs (100 to 120 for a narrow one, powers of
    /// ten for a wide one), at most a dozen.
    static func logTicks(from low: Double, to high: Double) -> [Double] {
        let low = max(low, 0.001), high = max(high, low * 1.01)
        for steps in [[1.0, 1.2, 1.5, 2, 3, 5, 7], [1, 2, 5], [1]] {
            var candidates: [Double] = []
            for exponent in Int(floor(log10(low)))...Int(ceil(log10(high))) {
                for step in steps { candidates.append(step * pow(10, Double(exponent))) }
            }
            let first = candidates.last { $0 <= low * 1.0001 } ?? candidates[0]
            let last = candidates.first { $0 >= high * 0.9999 } ?? candidates[candidates.count - 1]
            let ticks = candidates.filter { $0 >= first && $0 <= last }
            if ticks.count <= 12 || steps.count == 1 { return ticks }
        }
        return [low, high]
    }

    private static func tickLabel(_ milliseconds: Double) -> String {
        milliseconds >= 1 ? String(format: "%g", milliseconds) : String(format: milliseconds >= 0.01 ? "%.2f" : "%.3f", milliseconds)
    }

    /// Position on the "nines" axis: p0 at 0, p90 at 1, p99 at 2, p99.9 at 3.
    private static func nines(_ quantile: Double) -> Double { -log10(1 - min(quantile, 0.999)) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
