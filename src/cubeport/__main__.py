from cubeport.cli import main

main()
