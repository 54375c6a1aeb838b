"""The Telegram channel: updates in, neutral messages and service calls, actions out."""
