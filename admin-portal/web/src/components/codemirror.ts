// CodeMirror 6 for rule scripts, loaded on demand (its own chunk): a Rhai mode (a
// StreamLanguage: keywords, the effect helpers, strings, numbers, comments), line
// numbers, undo history, Tab to indent (Esc then Tab leaves the editor), a compile
// check as you type shown as a lint diagnostic at its line and column with the line's
// number marked, and a unified diff view of two texts.
import { Compartment, EditorState, RangeSet, StateEffect, StateField, type Extension } from "@codemirror/state";
import { EditorView, GutterMarker, gutterLineClass, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { HighlightStyle, StreamLanguage, indentOnInput, bracketMatching, syntaxHighlighting, type StringStream } from "@codemirror/language";
import { linter, lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { unifiedMergeView } from "@codemirror/merge";
import { tags } from "@lezer/highlight";

const KEYWORDS = new Set([
  "let", "const", "if", "else", "switch", "do", "while", "loop", "until", "for", "in", "break", "continue", "return",
  "throw", "try", "catch", "fn", "private", "import", "export", "as", "global", "this", "is_shared",
]);
const ATOMS = new Set(["true", "false"]);
/** The effect helpers a rule returns (examples/README.md). */
const EFFECTS = new Set(["award", "award_expiring", "deduct", "award_referrer", "lock", "accelerate", "set_counter", "tag", "deny"]);
const INPUTS = new Set(["event", "member", "params"]);

interface RhaiState {
  comment: number; // nesting depth of /* */ (Rhai nests them)
  quote: string | null; // inside a string that goes on past the line (backticks)
}

function tokenString(stream: StringStream, state: RhaiState): string {
  const q = state.quote!;
  let escaped = false;
  let ch: string | void;
  while ((ch = stream.next()) != null) {
    if (ch === q && !escaped) {
      state.quote = null;
      return "string";
    }
    escaped = !escaped && ch === "\\" && q !== "`";
  }
  if (q !== "`") state.quote = null;
  return "string";
}

export const rhai = StreamLanguage.define<RhaiState>({
  name: "rhai",
  startState: () => ({ comment: 0, quote: null }),
  token(stream, state) {
    if (state.comment > 0) {
      while (!stream.eol()) {
        if (stream.match("/*")) state.comment++;
        else if (stream.match("*/")) {
          state.comment--;
          if (state.comment === 0) break;
        } else stream.next();
      }
      return "comment";
    }
    if (state.quote) return tokenString(stream, state);
    if (stream.eatSpace()) return null;
    if (stream.match("//")) {
      stream.skipToEnd();
      return "comment";
    }
    if (stream.match("/*")) {
      state.comment = 1;
      return "comment";
    }
    const ch = stream.peek()!;
    if (ch === '"' || ch === "`") {
      stream.next();
      state.quote = ch;
      return tokenString(stream, state);
    }
    if (ch === "'") {
      stream.next();
      stream.match(/^\\?./);
      stream.eat("'");
      return "string";
    }
    if (stream.match(/^0x[0-9a-fA-F_]+|^0b[01_]+|^0o[0-7_]+|^\d[\d_]*(\.\d[\d_]*)?(e[+-]?\d+)?/)) return "number";
    if (stream.match("#{")) return "bracket";
    if (stream.match(/^[A-Za-z_][A-Za-z0-9_]*/)) {
      const w = stream.current();
      if (KEYWORDS.has(w)) return "keyword";
      if (ATOMS.has(w)) return "atom";
      if (EFFECTS.has(w)) return "builtin";
      if (INPUTS.has(w)) return "variableName.special";
      return stream.peek() === "(" ? "variableName.function" : "variableName";
    }
    if (stream.match(/^[+\-*/%=!<>&|^~?:.]+/)) return "operator";
    stream.next();
    return null;
  },
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } }, closeBrackets: { brackets: ["(", "[", "{", '"'] } },
});

// Colours with enough contrast on white (WCAG AA, checked by axe in the e2e run).
const style = HighlightStyle.define([
  { tag: tags.keyword, color: "#7a1fa2", fontWeight: "600" },
  { tag: tags.atom, color: "#0b5cad" },
  { tag: tags.number, color: "#0b5cad" },
  { tag: tags.string, color: "#1b6e20" },
  { tag: tags.comment, color: "#5c6670", fontStyle: "italic" },
  { tag: tags.standard(tags.variableName), color: "#a14400", fontWeight: "600" },
  { tag: tags.special(tags.variableName), color: "#8a2c1e" },
  { tag: tags.function(tags.variableName), color: "#1d4f91" },
  { tag: tags.operator, color: "#37474f" },
]);

const theme = EditorView.theme({
  "&": { fontSize: "13px", border: "1px solid var(--el-border-color)", borderRadius: "4px", background: "#fff" },
  "&.cm-focused": { outline: "2px solid var(--el-color-primary)", outlineOffset: "1px" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", lineHeight: "1.5" },
  ".cm-content": { minHeight: "18em" },
  ".cm-gutters": { background: "#f5f7fa", color: "#4a5560", borderRight: "1px solid var(--el-border-color-lighter)" },
  ".cm-lineNumbers .script-editor__err": { background: "#fde2e2", color: "#a8071a", fontWeight: "700" },
});

/** The line marked as failing to compile (its number's gutter cell gets a class). */
const markError = StateEffect.define<number | null>();
const errorMarker = new (class extends GutterMarker {
  elementClass = "script-editor__err";
})();
const errorLineField = StateField.define<RangeSet<GutterMarker>>({
  create: () => RangeSet.empty,
  update(value, tr) {
    value = value.map(tr.changes);
    for (const e of tr.effects) {
      if (!e.is(markError)) continue;
      const line = e.value;
      value = line && line >= 1 && line <= tr.state.doc.lines ? RangeSet.of([errorMarker.range(tr.state.doc.line(line).from)]) : RangeSet.empty;
    }
    return value;
  },
  provide: (f) => gutterLineClass.from(f),
});

/** A compile problem as the server reports it (1-based line and column; 0 = the whole script). */
export interface Problem {
  line: number;
  column: number;
  message: string;
}

function diagnostic(state: EditorState, p: Problem): Diagnostic {
  const doc = state.doc;
  const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
  const from = Math.min(line.from + Math.max(p.column - 1, 0), line.to);
  return { from, to: from < line.to ? from + 1 : from, severity: "error", message: p.message, source: `line ${p.line}, column ${p.column}` };
}

export interface EditorOptions {
  doc: string;
  label: string;
  readonly: boolean;
  /** Called with the text after each change settles; resolves to the problem, or null. */
  check?: (text: string) => Promise<Problem | null>;
  /** Told of every change of the text. */
  onChange: (text: string) => void;
  /** Told of each check's result (null: it compiles; undefined: the check failed). */
  onChecked?: (problem: Problem | null | undefined) => void;
}

export interface ScriptEditorHandle {
  view: EditorView;
  setText(text: string): void;
  /** Marks a problem (from a save), or clears the marks with null. */
  showProblem(p: Problem | null): void;
  setReadonly(readonly: boolean): void;
  destroy(): void;
}

export function createEditor(parent: HTMLElement, o: EditorOptions): ScriptEditorHandle {
  let applying = false;
  const editable = new Compartment();
  const writable = (ro: boolean) => [EditorState.readOnly.of(ro), EditorView.editable.of(!ro)];
  const exts: Extension[] = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightActiveLine(),
    history(),
    indentOnInput(),
    bracketMatching(),
    rhai,
    syntaxHighlighting(style),
    keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
    theme,
    errorLineField,
    lintGutter(),
    EditorView.lineWrapping,
    EditorView.contentAttributes.of({ "aria-label": o.label, "data-test": "script-text", spellcheck: "false", autocapitalize: "off", autocorrect: "off" }),
    editable.of(writable(o.readonly)),
    EditorView.updateListener.of((u) => {
      if (u.docChanged && !applying) o.onChange(u.state.doc.toString());
    }),
  ];
  if (o.check) {
    const check = o.check;
    exts.push(
      linter(
        async (view) => {
          const text = view.state.doc.toString();
          let problem: Problem | null;
          try {
            problem = await check(text);
          } catch {
            o.onChecked?.(undefined);
            return [];
          }
          // A check of an older text says nothing about this one.
          if (view.state.doc.toString() !== text) return [];
          o.onChecked?.(problem);
          view.dispatch({ effects: markError.of(problem ? problem.line : null) });
          return problem ? [diagnostic(view.state, problem)] : [];
        },
        { delay: 400 },
      ),
    );
  }
  const view = new EditorView({ parent, state: EditorState.create({ doc: o.doc, extensions: exts }) });
  return {
    view,
    setText(text) {
      if (text === view.state.doc.toString()) return;
      applying = true;
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
      applying = false;
    },
    showProblem(p) {
      view.dispatch(setDiagnostics(view.state, p ? [diagnostic(view.state, p)] : []));
      view.dispatch({ effects: markError.of(p ? p.line : null) });
      if (p && p.line >= 1 && p.line <= view.state.doc.lines) {
        const pos = diagnostic(view.state, p).from;
        view.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: "center" }) });
        view.focus();
      }
    },
    setReadonly(ro) {
      view.dispatch({ effects: editable.reconfigure(writable(ro)) });
    },
    destroy() {
      view.destroy();
    },
  };
}

/** A read-only unified diff: `current` with what `original` had marked as deleted. */
export function createDiff(parent: HTMLElement, original: string, current: string, label: string): EditorView {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: current,
      extensions: [
        // First: it outranks the shared theme's editor height.
        EditorView.theme({ ".cm-content": { minHeight: "0" } }),
        lineNumbers(),
        rhai,
        syntaxHighlighting(style),
        theme,
        EditorView.lineWrapping,
        EditorState.readOnly.of(true),
        EditorView.editable.of(false),
        EditorView.contentAttributes.of({ "aria-label": label }),
        unifiedMergeView({ original, mergeControls: false, gutter: true, highlightChanges: true }),
      ],
    }),
  });
}
