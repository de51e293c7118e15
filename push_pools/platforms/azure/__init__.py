"""Azure: Container Instances container groups (through ARM) and the Azure Functions app."""
