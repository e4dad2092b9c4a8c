from seventweets.cli import main

main()
