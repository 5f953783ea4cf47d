"""What operators do to sagas: actions, reports, and moving sagas between stores."""
