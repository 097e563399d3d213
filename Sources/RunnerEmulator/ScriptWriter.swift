/// Writes stage scripts in the shape gitlab-runner 19.x's bash shell writes them
/// (shells/bash.go; ../shared/reference/custom-executor.md §7): TERM trap, errexit and
/// pipefail, the whole body in one ANSI-C quoted `eval` in a subshell reading /dev/null.
public enum ScriptWriter {
  public static func script(body: [String]) -> String {
    let joined = body.joined(separator: "\n") + "\n"
    return """
      #!/usr/bin/env bash

      trap 'exit 1' TERM

      case "$(set -o)" in *"pipefail"*) set -o pipefail;; esac; set -o errexit
      set +o noclobber
      (trap 'exit 1' TERM; eval \(ansiC(joined))) < /dev/null
      exit 0

      """
  }

  /// bash's `$'...'` quoting: every byte survives, nothing is expanded.
  public static func ansiC(_ text: String) -> String {
    var out = "$'"
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\\"): out += "\\\\"
      case UInt8(ascii: "'"): out += "\\'"
      case UInt8(ascii: "\n"): out += "\\n"
      case UInt8(ascii: "\t"): out += "\\t"
      case 0x20...0x7e: out.unicodeScalars.append(Unicode.Scalar(byte))
      default: out += "\\x" + String(byte, radix: 16).leftPadded(2)
      }
    }
    return out + "'"
  }

  static func exports(_ variables: [(String, String)]) -> [String] {
    variables.filter { isName($0.0) }.map { "export \($0.0)=\(ansiC($0.1))" }
  }

  static func isName(_ text: String) -> Bool {
    guard let first = text.unicodeScalars.first, first == "_" || ("A"..."Z").contains(first) || ("a"..."z").contains(first) else {
      return false
    }
    return text.unicodeScalars.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
  }

  /// The echo-then-run lines of a user script, as the runner writes them.
  static func commands(_ lines: [String]) -> [String] {
    lines.flatMap { command -> [String] in
      if command.isEmpty { return ["echo"] }
      let shown = command.contains("\n")
        ? "$ \(command.split(separator: "\n").first ?? "") # collapsed multi-line command" : "$ \(command)"
      return ["echo \(ansiC("\u{1b}[32;1m\(shown)\u{1b}[0;m"))", command]
    }
  }

  public static func userScript(variables: [(String, String)], projectDirectory: String, commands lines: [String]) -> String {
    script(body: exports(variables) + ["cd \(ansiC(projectDirectory))"] + commands(lines))
  }

  public static func afterScript(variables: [(String, String)], projectDirectory: String, commands lines: [String]) -> String {
    script(body: exports(variables) + ["cd \(ansiC(projectDirectory))", "echo \(ansiC("Running after script..."))"] + commands(lines))
  }

  public static func prepareScript(hostname: String) -> String {
    script(body: ["echo \(ansiC("Running on "))\"$(hostname)\"\(ansiC(" via \(hostname)..."))"])
  }

  /// get_sources: ci-local has no Git server; it copies the project's tracked and
  /// untracked-but-not-ignored files (or the whole folder outside Git).
  public static func getSources(variables: [(String, String)], source: String, projectDirectory: String) -> String {
    let src = ansiC(source)
    let dst = ansiC(projectDirectory)
    // Outside Git: everything but build products, ci-local's own logs, and the builds
    // directory itself when it lies inside the project.
    var excludes = ["./.ci-local", "./.build", "./.git"]
    if projectDirectory.hasPrefix(source + "/"),
      let first = projectDirectory.dropFirst(source.count + 1).split(separator: "/").first
    {
      excludes.append("./\(first)")
    }
    let excludeFlags = excludes.map { "--exclude=\(ansiC($0))" }.joined(separator: " ")
    return script(body: exports(variables) + [
      "echo \(ansiC("Copying the project from \(source) (ci-local stands in for git clone)"))",
      "rm -rf \(dst) && mkdir -p \(dst)",
      "if git -C \(src) rev-parse --is-inside-work-tree >/dev/null 2>&1; then",
      "  (cd \(src) && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -C \(dst) -xf -",
      "else",
      "  tar -C \(src) \(excludeFlags) -cf - . | tar -C \(dst) -xf -",
      "fi",
    ])
  }

  /// upload_artifacts_on_success: copies the artifact paths into ci-local's store.
  public static func uploadArtifacts(variables: [(String, String)], projectDirectory: String, paths: [String], store: String) -> String {
    var body = exports(variables) + ["cd \(ansiC(projectDirectory))", "mkdir -p \(ansiC(store))"]
    body.append("echo \(ansiC("Saving artifacts: \(paths.joined(separator: " "))"))")
    for path in paths {
      body.append("for p in \(path); do if [ -e \"$p\" ]; then cp -a --parents \"$p\" \(ansiC(store))/; else echo \"WARNING: $p: no matching files\"; fi; done")
    }
    return script(body: body)
  }

  /// download_artifacts: copies earlier jobs' artifacts into the project directory.
  public static func downloadArtifacts(variables: [(String, String)], projectDirectory: String, stores: [String]) -> String {
    var body = exports(variables) + ["cd \(ansiC(projectDirectory))"]
    for store in stores {
      body.append("if [ -d \(ansiC(store)) ]; then cp -a \(ansiC(store))/. .; fi")
    }
    return script(body: body)
  }

  public static func cleanupFileVariables(variables: [(String, String)], projectDirectory: String) -> String {
    script(body: exports(variables) + ["rm -rf \(ansiC(projectDirectory + ".tmp"))"])
  }
}

extension String {
  func leftPadded(_ width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}
