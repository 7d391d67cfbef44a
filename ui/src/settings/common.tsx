// What the settings screens share: loading a resource with its error, a confirmation before
// anything is deleted, and the server's message when a request is refused.

import { useCallback, useEffect, useState, type ReactNode } from "react";
import { ApiError } from "../api";

/** The server's message of a failed request (RBAC's refusal included), else the error's. */
export function message(err: unknown): string {
  return err instanceof ApiError || err instanceof Error ? err.message : String(err);
}

/** `load()`'s answer, its error, and a way to load again (after a change). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const reload = useCallback(load, deps);
  const run = useCallback(() => {
    reload()
      .then((answer) => {
        setData(answer);
        setError(undefined);
      })
      .catch((err) => setError(message(err)));
  }, [reload]);
  useEffect(run, [run]);
  return { data, error, reload: run };
}

export function Alert({ text }: { text?: string }) {
  if (!text) return null;
  return (
    <p role="alert" className="error">
      {text}
    </p>
  );
}

/** A request run from a control: the server's message if it is refused. */
export function useAction() {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = async (request: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(undefined);
    try {
      await request();
      return true;
    } catch (err) {
      setError(message(err));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { run, error, busy, setError };
}

/** A dialog around a form: submit runs `onSubmit`, whose refusal stays shown in the dialog. */
export function Dialog({
  title,
  submit,
  onSubmit,
  onClose,
  children,
  wide,
}: {
  title: string;
  submit: string;
  onSubmit: () => Promise<unknown>;
  onClose: () => void;
  children?: ReactNode;
  wide?: boolean;
}) {
  const { run, error, busy } = useAction();
  return (
    <div className="modal-backdrop">
      <form
        className={wide ? "modal wide" : "modal"}
        role="dialog"
        aria-label={title}
        onSubmit={async (event) => {
          event.preventDefault();
          if (await run(onSubmit)) onClose();
        }}
      >
        <h2>{title}</h2>
        {children}
        <Alert text={error} />
        <footer>
          <button type="submit" className="primary" disabled={busy}>
            {submit}
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </footer>
      </form>
    </div>
  );
}

/** A delete button that asks first; disabled with RBAC's reason when denied. */
export function DeleteButton({
  what,
  reason,
  onDelete,
}: {
  what: string;
  reason?: string;
  onDelete: () => Promise<unknown>;
}) {
  const [asking, setAsking] = useState(false);
  return (
    <>
      <button
        type="button"
        onClick={() => setAsking(true)}
        disabled={!!reason}
        title={reason ?? `Delete ${what}`}
        aria-label={`Delete ${what}`}
      >
        Delete
      </button>
      {asking && (
        <Dialog
          title={`Delete ${what}?`}
          submit="Delete"
          onSubmit={onDelete}
          onClose={() => setAsking(false)}
        />
      )}
    </>
  );
}

/** A labelled text input bound to `value`. */
export function TextField({
  label,
  name,
  value,
  onChange,
  type = "text",
  placeholder,
  required,
  readOnly,
}: {
  label: string;
  name: string;
  value: string;
  onChange: (value: string) => void;
  type?: string;
  placeholder?: string;
  required?: boolean;
  readOnly?: boolean;
}) {
  return (
    <label>
      {label}
      <input
        name={name}
        type={type}
        value={value}
        placeholder={placeholder}
        required={required}
        readOnly={readOnly}
        autoComplete="off"
        onChange={(e) => onChange(e.target.value)}
      />
    </label>
  );
}

export function TextArea({
  label,
  name,
  value,
  onChange,
  rows = 4,
}: {
  label: string;
  name: string;
  value: string;
  onChange: (value: string) => void;
  rows?: number;
}) {
  return (
    <label>
      {label}
      <textarea
        name={name}
        rows={rows}
        value={value}
        spellCheck={false}
        onChange={(e) => onChange(e.target.value)}
      />
    </label>
  );
}

export function Check({
  label,
  name,
  checked,
  onChange,
}: {
  label: string;
  name: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
}) {
  return (
    <label className="check">
      <input
        type="checkbox"
        name={name}
        checked={checked}
        onChange={(e) => onChange(e.target.checked)}
      />
      {label}
    </label>
  );
}

/** Seconds since the epoch (token records) as a local date and time. */
export function when(seconds?: number): string {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
}
