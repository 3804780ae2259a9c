import Foundation

/// A reliability check's figures as text: a title and a two-column Markdown table.
enum ReliabilityTable {
    static func render(title: String, rows: [(String, String)], footnote: String? = nil) -> String {
        var lines = [title, "", "| figure | value |", "|---|---:|"]
        // A pipe inside a cell (an error message) would split it.
        lines += rows.map { "| \($0.0) | \($0.1.replacingOccurrences(of: "|", with: "/")) |" }
        if let footnote { lines += ["", footnote] }
        return lines.joined(separator: "\n")
    }
}
