import SbatchModel

/// The batch script the driver submits. It holds no CI variables (Slurm keeps a copy of
/// every batch script): it only runs the staged CI script, which sits in a 0700 directory on
/// shared storage, and records how it ended in the task's status file, atomically.
///
/// The status file says `exit N` when the script ended by itself, or `terminated N` when the
/// task got SIGTERM first (time limit, scancel, preemption): the driver then asks the
/// scheduler why, instead of reporting the script's own exit 1 from its TERM trap.
public enum WrapperScript {
  public static func render(stageScript: String, directory: String) -> String {
    let q = ShellWords.quote
    return """
      #!/bin/bash
      # Written by ci-run. Holds no CI variables; see the driver's docs (docs/executor.md).
      dir=\(q(directory))
      if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then status="$dir/status-$SLURM_ARRAY_TASK_ID"; else status="$dir/status"; fi
      terminated=0
      trap 'terminated=1' TERM
      bash \(q(stageScript)) < /dev/null &
      child=$!
      while :; do
        wait "$child"
        rc=$?
        # `wait` also returns when the TERM trap runs; only a finished child ends the loop.
        kill -0 "$child" 2>/dev/null || break
      done
      if [ "$terminated" = 1 ]; then word=terminated; else word=exit; fi
      printf '%s %s\\n' "$word" "$rc" > "$status.tmp" && mv -f "$status.tmp" "$status"
      exit "$rc"

      """
  }

  /// Parses a status file's content: `exit 3` or `terminated 143`.
  public static func parseStatus(_ text: String) -> TaskStatus? {
    let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
    guard words.count == 2, let code = Int32(words[1]) else { return nil }
    switch words[0] {
    case "exit": return .exited(code)
    case "terminated": return .terminated(code)
    default: return nil
    }
  }
}

/// What a task's status file says.
public enum TaskStatus: Equatable, Sendable {
  case exited(Int32)
  case terminated(Int32)
}
