import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  /** What this part of the page is, for the message ("The game", "Rewards"). */
  what: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

/** Shows a failure in words instead of a blank page, with a way to try again. */
export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: unknown): State {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`${this.props.what} crashed`, error, info.componentStack);
  }

  render(): ReactNode {
    if (this.state.error !== null) {
      return (
        <section className="panel" role="alert" data-testid="error-boundary">
          <h2>{this.props.what} stopped working</h2>
          <p className="error">{this.state.error.message || this.state.error.name}</p>
          <p>Any recording already finished is saved in this browser and will upload when you come back.</p>
          <button type="button" onClick={() => this.setState({ error: null })}>
            Try again
          </button>{" "}
          <button type="button" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        </section>
      );
    }
    return this.props.children;
  }
}
